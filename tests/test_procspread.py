"""studies/procspread.py: the launch variants, their order, and the spread it reports."""

import json
import math
import statistics

import pytest

from studies import procspread as ps


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


def test_call_seconds_times_samples_of_calls_after_untimed_warmups():
    from benchmarks.lib.timing import call_seconds

    ticks = iter([0.0, 3.0, 10.0, 16.0])
    calls = []
    seconds = call_seconds(lambda: calls.append(1), samples=2, number=3, warmup=2, clock=lambda: next(ticks))
    assert seconds == [1.0, 2.0]  # a sample's span over its 3 calls
    assert len(calls) == 2 + 2 * 3


def test_bad_arguments_are_one_line_and_exit_2(capsys):
    assert ps.main(["--variants", "base,bogus"]) == 2
    assert "unknown variant 'bogus'" in capsys.readouterr().err
    assert ps.main(["--processes", "1"]) == 2


def test_variance_parts_split_an_offset_per_process_from_the_noise_inside():
    # Each process has its own offset and no noise inside: all of it is between.
    between, within = ps.variance_parts([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    assert within == 0.0
    assert between == pytest.approx(math.log(2.0) / math.sqrt(2))
    # The same values in every process: all of it is within, none between.
    between, within = ps.variance_parts([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0]])
    assert between == 0.0
    assert within == pytest.approx(math.log(2.0) / math.sqrt(2))


def test_rebuild_table_reports_what_the_fresh_builds_average_away():
    # Offsets that move with the build: one build per process spreads,
    # the mean of a process's fresh builds does not.
    procs = [{"k": {"kept": [a, a], "fresh": [1.0, 2.0]}} for a in (1.0, 2.0, 1.0, 2.0)]
    text = ps.rebuild_table(procs)
    row = next(line for line in text.splitlines() if line.startswith("| k |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # one build: the kept's first values 1, 2, 1, 2 -> sd of their logs
    assert cells[1] == f"{100 * statistics.stdev([0.0, math.log(2.0)] * 2):.1f}%"
    assert cells[4] == "0.0%"  # the fresh means are all the same
    assert cells[2].split("/")[1].strip() == "0.0%"  # kept: nothing within


def test_rebuilds_measure_kept_and_fresh_builds_in_turn(capsys):
    pytest.importorskip("torch")
    ps.child_rebuilds([("ReLU", "dim=128x16x1024", "torch_cpu")], 2)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    obs = out["ReLU|dim=128x16x1024|torch_cpu"]
    assert len(obs["kept"]) == 2 and len(obs["fresh"]) == 2
    assert all(x > 0 for x in obs["kept"] + obs["fresh"])


def test_fresh_callable_is_a_new_build_with_new_buffers():
    pytest.importorskip("torch")
    from benchmarks import ops

    kept = ops.ReLU.callable("dim=128x16x1024", "torch_cpu")
    fresh = ps.fresh_callable("ReLU", "dim=128x16x1024", "torch_cpu")
    assert fresh is not kept
    assert ps.fresh_callable("ReLU", "dim=128x16x1024", "torch_cpu") is not fresh


def test_rebuilds_of_one_are_refused(capsys):
    assert ps.main(["--rebuilds", "1"]) == 2
    assert "--rebuilds must be at least 2" in capsys.readouterr().err


class _FakeWorker:
    """A worker that answers each case index with a fixed time per side."""

    def __init__(self, times, log, name):
        self.times, self.log, self.name = times, log, name
        self.stdin = self
        self._answers = ["ready\n"]
        self.stdout = self

    def write(self, line):
        i = int(line)
        self.log.append((self.name, i))
        self._answers.append(f"{self.times[i]!r}\n")

    def flush(self):
        pass

    def readline(self):
        return self._answers.pop(0) if self._answers else ""

    def close(self):
        pass

    def wait(self):
        return 0


def test_pairs_ask_both_sides_back_to_back_and_alternate_who_goes_first():
    cases = [("F", "x", "mlx_cpu"), ("G", "y", "torch_cpu")]
    log = []
    made = iter([_FakeWorker([1.0, 2.0], log, "a"), _FakeWorker([1.5, 2.5], log, "b")])
    out = ps.measure_pair(cases, 2, lambda: next(made))
    assert out["F|x|mlx_cpu"] == {"a": [1.0, 1.0], "b": [1.5, 1.5]}
    assert out["G|y|torch_cpu"] == {"a": [2.0, 2.0], "b": [2.5, 2.5]}
    # each case's two sides are consecutive; the first side alternates
    assert log == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("b", 0), ("a", 0), ("a", 1), ("b", 1)]


def test_a_worker_that_stops_is_an_error_not_a_short_result():
    log = []

    class Dies(_FakeWorker):
        def write(self, line):
            pass  # never answers

    made = iter([_FakeWorker([1.0], log, "a"), Dies([1.0], log, "b")])
    with pytest.raises(RuntimeError, match="stopped measuring"):
        ps.measure_pair([("F", "x", "mlx_cpu")], 2, lambda: next(made))


def test_pair_table_sees_a_shared_drift_cancel_in_the_ratio():
    # Both sides drift together over the turns (x1, x2, x1, x2): one side
    # spreads inside its process, the paired ratio does not at all.
    pairs = [{"k": {"a": [1.0, 2.0, 1.0, 2.0], "b": [1.1, 2.2, 1.1, 2.2]}} for _ in range(3)]
    row = next(line for line in ps.pair_table(pairs).splitlines() if line.startswith("| k |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{100 * statistics.stdev([0.0, math.log(2.0)] * 2):.1f}%"
    assert cells[2] == "0.0%" and cells[3] == "0.0%" and cells[4] == "0.0%"


def test_pairs_need_two_turns(capsys):
    assert ps.main(["--pairs", "1"]) == 2
    assert "must be at least 2" in capsys.readouterr().err


def test_fixedmalloc_pins_glibcs_thresholds_so_history_does_not_choose_the_pages():
    prefix, env = ps.launch("fixedmalloc", {})
    assert prefix == []
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"
    _, env = ps.launch("heapmalloc", {})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"


def test_cputime_is_the_base_launch_timed_by_the_processs_cpu_clock(monkeypatch, capsys):
    prefix, env = ps.launch("cputime", {"PATH": "/bin"})
    assert prefix == [] and env[ps.CLOCK_ENV] == "process" and "GLIBC_TUNABLES" not in env
    assert ps.CLOCK_ENV not in ps.launch("base", {})[1]
    seen = []
    monkeypatch.setattr(ps, "fastest_call", lambda fn, clock=None: seen.append(clock) or 1.0)
    monkeypatch.setattr(ps, "DEFAULT_CASES", ())
    for value, clock in (("process", ps.time.process_time), (None, ps.time.perf_counter)):
        if value:
            monkeypatch.setenv(ps.CLOCK_ENV, value)
        else:
            monkeypatch.delenv(ps.CLOCK_ENV, raising=False)
        ps.child([("ReLU", "dim=128x16x1024", "mlx_cpu")])
        assert seen.pop() is clock
    capsys.readouterr()


def test_children_run_this_checkouts_module_from_the_root_without_sys_path_edits(monkeypatch, capsys):
    """The child processes are ``python -m studies.procspread --child`` from the
    repository root, where Python finds this checkout's studies and benchmarks
    (not an installed copy's) before anything else."""
    import os
    import subprocess
    import sys

    seen = []
    keys = [f"{family}|{label}|{backend}" for family, label, backend in ps.DEFAULT_CASES]

    def fake_run(cmd, **kw):
        seen.append((cmd, kw["cwd"]))
        return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps({k: 0.01 * (1 + len(seen)) for k in keys}),
                                           stderr="")

    monkeypatch.setattr(ps.subprocess, "run", fake_run)
    assert ps.main(["--processes", "2", "--variants", "base"]) == 0
    capsys.readouterr()
    assert [cmd[1:] for cmd, _ in seen] == [["-m", ps.CHILD_MODULE, "--child"]] * 2
    assert {cwd for _, cwd in seen} == {ps.ROOT}
    monkeypatch.undo()  # the real subprocess.run: where does python -m find the module?
    find = f"import importlib.util as u; print(u.find_spec({ps.CHILD_MODULE!r}).origin)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    origin = subprocess.run([sys.executable, "-c", find], cwd=ps.ROOT, capture_output=True, text=True, check=True,
                            env=env).stdout.strip()
    assert origin == os.path.abspath(ps.__file__)
    with open(ps.__file__, encoding="utf-8") as f:
        assert "sys.path.insert" not in f.read()
