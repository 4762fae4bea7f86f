"""tools/procspread.py: the launch variants, their order, and the spread it reports."""

import math

import pytest

from tools import procspread as ps


def test_variants_set_what_they_name():
    prefix, env = ps.launch("base", {"PATH": "/bin"})
    assert prefix == [] and env == {"PATH": "/bin"}
    prefix, env = ps.launch("noaslr", {})
    assert prefix[0] == "setarch" and prefix[-1] == "-R" and env["PYTHONHASHSEED"] == "0"
    assert "GLIBC_TUNABLES" not in env
    prefix, env = ps.launch("noaslr_thp", {})
    assert prefix and env["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    with pytest.raises(ValueError, match="unknown variant"):
        ps.launch("pinned", {})


def test_order_alternates_so_drift_falls_on_all_variants():
    v = ["a", "b", "c"]
    assert ps.order_of(v, 0) == ["a", "b", "c"]
    assert ps.order_of(v, 1) == ["c", "b", "a"]
    # over two processes every variant has the same mean position
    pos = {x: sum(ps.order_of(v, i).index(x) for i in range(2)) for x in v}
    assert len(set(pos.values())) == 1


def test_spread_is_the_sd_of_logs_and_the_geometric_mean():
    obs = [{"k": 1.0}, {"k": 4.0}]
    sd, gm = ps.spread(obs)["k"]
    assert gm == pytest.approx(2.0)
    assert sd == pytest.approx(math.log(4.0) / math.sqrt(2))
    same = ps.spread([{"k": 0.5}, {"k": 0.5}, {"k": 0.5}])["k"]
    assert same[0] == 0.0


def test_fastest_call_takes_the_fastest_sample_per_call():
    ticks = iter([0.0, 0.001] + [float(t) for t in range(100)])
    calls = []

    def clock():
        return next(ticks)

    best = ps.fastest_call(lambda: calls.append(1), samples=3, sample_seconds=0.002, clock=clock)
    # number = 2 calls a sample; each sample spans 1 tick -> 0.5 a call
    assert best == pytest.approx(0.5)
    assert len(calls) == 1 + 1 + 3 * 2


def test_bad_arguments_are_one_line_and_exit_2(capsys):
    assert ps.main(["--variants", "base,bogus"]) == 2
    assert "unknown variant 'bogus'" in capsys.readouterr().err
    assert ps.main(["--processes", "1"]) == 2
