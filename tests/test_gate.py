"""The gate, its candidates and the calibration's injection switch (no benchmark runs here;
tests/test_e2e_asv.py runs a real gate through asv)."""

import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmarks import common, ops
from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import gate
from mlx_asv.envs import install, ledger
from mlx_asv.decide import instructions
from mlx_asv.measure import protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from conftest import SMALL_TABLE as TABLE


@pytest.fixture(autouse=True)
def no_costs_of_this_machine(monkeypatch):
    """The gate plans from .asv/costs.json: tests start from none."""
    monkeypatch.setattr(protocol, "load_costs", lambda path=None: {})


# --------------------------------------------------------------------------
# Candidates in the ledger
# --------------------------------------------------------------------------


def test_candidate_is_a_branch_on_its_base_and_main_stays_releases(small_ledger, tmp_path):
    wheel = tmp_path / "mlx-0.2.1.dev1+gabc-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    commit = ledger.add_candidate("pr-1", "v0.2.0", wheels=[str(wheel)], repo=small_ledger, log=lambda m: None)
    git = lambda *a: ledger.git(small_ledger, *a).strip()  # noqa: E731
    assert git("rev-parse", "candidate/pr-1") == commit
    assert git("rev-parse", f"{commit}^") == git("rev-parse", "v0.2.0^{commit}")
    assert git("show", f"{commit}:MLX_VERSION") == "0.2.1.dev1+gabc"
    assert git("show", f"{commit}:{wheel.name}") == "not really a wheel"
    about = git("show", f"{commit}:MLX_CANDIDATE")
    assert "kind wheel" in about and "base v0.2.0" in about and wheel.name in about
    # main still ends at the newest release, so asv publish graphs releases only
    assert git("rev-parse", "main") == git("rev-parse", "v0.3.0^{commit}")
    assert commit not in git("rev-list", "main").split()
    # a rebuild of the ledger keeps the candidate
    table = tmp_path / "t.tsv"
    table.write_text(TABLE)
    ledger.build(ledger.read_table(str(table)), repo=small_ledger, log=lambda m: None)
    assert git("rev-parse", "candidate/pr-1") == commit
    assert [b for b, _, _ in ledger.candidates(small_ledger)] == ["candidate/pr-1"]
    ledger.remove_candidate("pr-1", repo=small_ledger)
    assert ledger.candidates(small_ledger) == []


def test_release_twin_candidate(small_ledger):
    commit = ledger.add_candidate("aa", "v0.3.0", same_as="v0.3.0", repo=small_ledger, log=lambda m: None)
    assert ledger.git(small_ledger, "show", f"{commit}:MLX_VERSION").strip() == "0.3.0"
    assert "kind release-twin" in ledger.git(small_ledger, "show", f"{commit}:MLX_CANDIDATE")


@pytest.mark.parametrize("kwargs,message", [
    (dict(base="v9.9.9", same_as="v0.1.0"), "release v9.9.9 is not in the ledger (newest: v0.3.0)"),
    (dict(base="v0.1.0"), "either --wheel"),
    (dict(base="v0.1.0", same_as="v0.1.0", wheels=["x.whl"]), "either --wheel"),
    (dict(base="v0.1.0", wheels=["/nonexistent/mlx-1.0-py3-none-any.whl"]), "no such wheel file"),
])
def test_bad_candidates_end_in_one_line(small_ledger, kwargs, message):
    with pytest.raises(ledger.LedgerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ledger.add_candidate("c", repo=small_ledger, log=lambda m: None, **kwargs)


def test_install_reads_a_candidate_and_installs_its_wheels(tmp_path, monkeypatch):
    (tmp_path / "MLX_VERSION").write_text("0.2.1.dev1\n")
    (tmp_path / "MLX_CANDIDATE").write_text("name pr\nbase v0.2.0\nkind wheel\nwheel mlx-0.2.1.dev1-py3-none-any.whl abc\n")
    about = install.read_candidate(str(tmp_path))
    assert about["kind"] == "wheel" and about["wheel"] == ["mlx-0.2.1.dev1-py3-none-any.whl"]
    # the wheel is missing from the checkout: one line naming the fix
    with pytest.raises(install.InstallError, match="add the candidate again"):
        install.install_wheels("0.2.1.dev1", str(tmp_path), about["wheel"], log=lambda m: None)
    assert install.read_candidate(str(tmp_path / "nowhere")) is None


# --------------------------------------------------------------------------
# The injection switch
# --------------------------------------------------------------------------


def calibration_env(tmp_path, commit="c0ffee", run_id="calib-1", in_matrix=True):
    folder = tmp_path / "calibration" / run_id
    folder.mkdir(parents=True)
    key = common.injection_key(ops.ReLU, "dim=64x128x1024", "mlx_cpu")
    (folder / "plan.json").write_text(json.dumps({"commits": {commit: {key: 1.2}}}))
    env = {"MLX_ASV_INJECT": run_id, "ASV_CONF_DIR": str(folder), "ASV_COMMIT": commit,
           "ASV_ENV_NAME": "virtualenv-py3.11" + ("-MLX_ASV_INJECTcalib-1" if in_matrix else "")}
    return env, key


def in_benchmark_process(monkeypatch, env, key=None):
    """As asv's benchmark process sees it: ``env`` exported; ASV_COMMIT names no
    ledger commit here, and the release check is not what these tests test."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(common, "check_mlx_release", lambda *a, **k: None)


def test_injection_only_in_calibration_runs(tmp_path):
    env, key = calibration_env(tmp_path)
    assert common.injection_plan(env) == {key: 1.2}
    # the variable exported by hand, not through asv's matrix: ignored
    assert common.injection_plan(dict(env, ASV_ENV_NAME="virtualenv-py3.11")) == {}
    # a release's commit (any commit the plan does not name): ignored
    assert common.injection_plan(dict(env, ASV_COMMIT="a78e78eb")) == {}
    # asv run from the project (asv.conf.json), not the calibration folder: ignored
    assert common.injection_plan(dict(env, ASV_CONF_DIR=ROOT)) == {}
    assert common.injection_plan({}) == {}


def test_the_project_config_never_sets_the_switch():
    with open(os.path.join(ROOT, "asv.conf.json")) as f:
        assert "MLX_ASV_INJECT" not in f.read()


def test_a_normal_asv_run_is_never_stretched(tmp_path, monkeypatch):
    in_benchmark_process(monkeypatch, *calibration_env(tmp_path, in_matrix=False))
    bench = ops.ReLU()
    bench.setup("dim=128x16x1024", "mlx_cpu")
    assert bench.fn is ops.ReLU.callable("dim=128x16x1024", "mlx_cpu")


def test_stretch_is_exact_on_the_benchmark_clock():
    def work():
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass
        return 1

    for factor in (1.05, 1.1, 1.2, 2.0):
        call = common.stretched(work, factor)
        clock = ops.ReLU.timer
        t0 = clock()
        start = time.perf_counter()
        assert call() == 1
        wall = time.perf_counter() - start
        measured = clock() - t0
        assert measured == pytest.approx(factor * wall, rel=0.02)
    # asv times ops with this clock
    assert ops.Softmax.timer is ops.ReLU.timer


# --------------------------------------------------------------------------
# The gate's verdicts and exit codes (measuring replaced by fixed samples)
# --------------------------------------------------------------------------


class FakeSession:
    """Stands in for protocol.Session: every round adds one process a side."""

    def __init__(self, folder, commits, bench, factors, **kw):
        self.commits, self.bench, self.factors = commits, bench, factors
        self.data, self.rounds, self.folder = {}, 0, folder
        self.cost = {k: 0.01 for k in factors}  # seconds a process: everything fits the budget

    def round(self, keys=None, order=None, bench=None):
        import random

        self.rounds += 1
        rng = random.Random(self.rounds)
        import re

        for key, factor in self.factors.items():
            if keys is not None and key not in keys:
                continue
            if keys is None and bench and not re.search(bench, key):
                continue
            for i, commit in enumerate(self.commits):
                f = factor if i == 1 else 1.0
                self.data.setdefault(key, {}).setdefault(commit, []).append(
                    [0.01 * f * (1 + abs(rng.gauss(0, 0.003))) for _ in range(5)])
        return 0.0

    def keys(self):
        return sorted(self.data)


def fake_gate(monkeypatch, tmp_path, factors):
    monkeypatch.setattr(protocol, "Session", lambda folder, commits, bench, **kw: FakeSession(
        folder, commits, bench, factors))
    monkeypatch.setattr(protocol, "describe", lambda c: c)
    g = gate.Gate("base", "cand", "x", str(tmp_path), log=lambda m: None)
    g.run()
    return g


def cases(n, factor=1.0, backend="mlx_cpu", name="ops.F.time_op"):
    return {f"{name}('c{i}', '{backend}')": factor for i in range(n)}


def test_gate_confirms_a_slowdown_with_fresh_rounds(monkeypatch, tmp_path):
    factors = {**cases(20), **cases(3, 1.25, name="ops.G.time_op")}
    g = fake_gate(monkeypatch, tmp_path, factors)
    verdicts = {k: v.verdict for k, v in g.results.items()}
    assert [k for k, v in verdicts.items() if v == vd.SLOWER] == sorted(cases(3, name="ops.G.time_op"))
    assert all(v == vd.SAME for k, v in verdicts.items() if k.startswith("ops.F"))
    assert len(g.stages) >= 2  # the slowdown was measured again before it counted
    assert all("confirmed" in g.results[k].note for k in cases(3, name="ops.G.time_op"))
    text = gate.markdown(g.as_json())
    assert "## Slower (confirmed) (3)" in text and "## Same (20)" in text
    # the slowdowns are on mlx_cpu: the command that counts their instructions
    assert f"python tools/instructions.py base cand -b \"{protocol.case_regex(cases(3, name='ops.G.time_op'))}\"" in text


def test_gate_exit_codes(monkeypatch, tmp_path, small_ledger):
    monkeypatch.setattr(ledger, "DEFAULT_REPO", small_ledger)
    monkeypatch.setattr(protocol, "resolve", lambda name, repo=None: {"v0.2.0": "b" * 40, "v0.3.0": "c" * 40,
                                                                      "same": "b" * 40}[name])
    monkeypatch.setattr(ledger, "ensure", lambda **kw: None)
    monkeypatch.setattr(protocol, "describe", lambda c, repo=None: c[:8])
    for factors, code in ((cases(20), 0), ({**cases(20), **cases(2, 1.3, name="ops.G.time_op")}, 1),
                          ({**cases(20), **cases(2, 0.7, name="ops.G.time_op")}, 0)):
        monkeypatch.setattr(protocol, "Session", lambda folder, commits, bench, f=factors, **kw: FakeSession(
            folder, commits, bench, f))
        out = tmp_path / f"run{code}{len(factors)}"
        assert gate.main(["v0.2.0", "v0.3.0", "--out", str(out)]) == code
        assert json.loads((out / "verdicts.json").read_text())["summary"]
    # the same commit twice, an unknown name: one line, exit 2
    assert gate.main(["v0.2.0", "same"]) == 2
    monkeypatch.setattr(protocol, "resolve", lambda name, repo=None: (_ for _ in ()).throw(
        protocol.ProtocolError(f"{name!r} is not in the release ledger")))
    assert gate.main(["v0.2.0", "v9.9.9"]) == 2


def test_case_regex_matches_exactly_the_cases():
    import re

    keys = ["ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu')", "ops.Sum.time_op('dim=64x1000000 axis=-1', 'torch_cpu')"]
    rx = re.compile(protocol.case_regex(keys))
    assert all(rx.search(k) for k in keys)
    assert not rx.search("ops.ReLU.time_op('dim=128x16x1024', 'torch_cpu')")
    assert protocol.group_of(keys[1]) == "torch_cpu"


def test_bench_regex_selects_benchmarks_and_backends():
    import re

    relu, sum_ = "ops.ReLU.time_op('dim=128x16x1024', '{}')", "ops.Sum.time_op('dim=64x1000000 axis=-1', '{}')"
    rx = re.compile(protocol.bench_regex(["mlx_cpu", "torch_cpu"]))
    assert rx.search(relu.format("mlx_cpu")) and rx.search(sum_.format("torch_cpu"))
    assert not rx.search(relu.format("mlx_gpu")) and not rx.search("models.Llama.time_op('s', 'mlx_cpu')")
    only_relu = re.compile(protocol.bench_regex(["mlx_cpu"], names=r"^(ops\.ReLU\.time_op)"))
    assert only_relu.search(relu.format("mlx_cpu")) and not only_relu.search(sum_.format("mlx_cpu"))

    # a family regex is narrowed to the backends; one that names parameters is kept as given
    family = re.compile(protocol.family_on(r"^ops\.ReLU\.$", lambda: ["torch_cpu"]))
    assert family.search(relu.format("torch_cpu")) and not family.search(relu.format("mlx_cpu"))
    assert not family.search(sum_.format("torch_cpu"))
    given = r"^ops\.ReLU\.time_op\('dim=128x16x1024', 'mlx_cpu'\)$"
    assert protocol.family_on(given, lambda: pytest.fail("backends detected for a regex that names them")) == given


def test_gate_cli_names_an_unknown_release(tmp_path):
    proc = subprocess.run([sys.executable, "tools/gate.py", "v0.32.4", "v9.9.9"], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, MLX_ASV_OFFLINE="1"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert "'v9.9.9' is not in the release ledger" in lines[-1] and "Traceback" not in proc.stderr


def test_a_calibration_run_is_stretched(tmp_path, monkeypatch):
    in_benchmark_process(monkeypatch, *calibration_env(tmp_path, in_matrix=True))
    bench = ops.ReLU()
    bench.setup("dim=64x128x1024", "mlx_cpu")  # the planned case: stretched
    assert bench.fn is not ops.ReLU.callable("dim=64x128x1024", "mlx_cpu")
    bench.setup("dim=128x16x1024", "mlx_cpu")  # not in the plan: as it is
    assert bench.fn is ops.ReLU.callable("dim=128x16x1024", "mlx_cpu")


def test_a_long_case_keeps_one_process_a_side_and_is_still_decided(monkeypatch, tmp_path):
    factors = {**cases(20), "ops.M.time_op('big', 'mlx_cpu')": 1.0}

    def session(folder, commits, bench, **kw):
        s = FakeSession(folder, commits, bench, factors)
        s.cost["ops.M.time_op('big', 'mlx_cpu')"] = 40.0  # seconds a process: past --long
        return s

    monkeypatch.setattr(protocol, "Session", session)
    g = gate.Gate("base", "cand", "x", str(tmp_path), log=lambda m: None)
    g.run()
    big = g.results["ops.M.time_op('big', 'mlx_cpu')"]
    assert (big.n_base, big.n_cand) == (1, 1)
    assert big.verdict == vd.SAME  # decided on the prior from the 20 other cases
    assert all(v.n_base >= 2 for k, v in g.results.items() if "big" not in k)


def test_steps_expands_inclusive_ranges_and_refuses_unknown_ends(monkeypatch):
    from mlx_asv.decide import steps

    class Rel:
        def __init__(self, tag):
            self.tag = tag

    monkeypatch.setattr(ledger, "ensure", lambda **kw: [(Rel(t), t) for t in ("v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0")])
    assert protocol.expand(["v0.2.0..v0.4.0"]) == ["v0.2.0", "v0.3.0", "v0.4.0"]
    assert protocol.expand(["v0.1.0", "v0.3.0"]) == ["v0.1.0", "v0.3.0"]
    with pytest.raises(protocol.ProtocolError, match="newest: v0.4.0"):
        protocol.expand(["v0.2.0..v9.9.9"])
    with pytest.raises(protocol.ProtocolError, match="at least two"):
        protocol.expand(["v0.2.0"])


def test_protocol_reads_a_rounds_samples_and_costs(tmp_path):
    folder = tmp_path / "results" / "vm"
    folder.mkdir(parents=True)
    cols = ["result", "params", "version", "started_at", "duration", "samples"]
    data = {"commit_hash": "c" * 40, "result_columns": cols, "results": {
        "ops.F.time_op": [[0.5, None, float("nan")], [["'a'", "'b'", "'c'"], ["'mlx_cpu'"]], "v", 0, 12.0,
                          [[0.5, 0.6], None, None]]}}
    (folder / "cccccccc-env.json").write_text(json.dumps(data))
    (folder / "machine.json").write_text("{}")
    got = protocol.read_samples(str(tmp_path / "results"), "c" * 40)
    assert got == {"ops.F.time_op('a', 'mlx_cpu')": [0.5, 0.6]}  # failed and skipped cases: no sample
    assert protocol.read_durations(str(tmp_path / "results"), "c" * 40) == {"ops.F.time_op": 12.0}
    assert protocol.read_samples(str(tmp_path / "results"), "d" * 40) == {}
    assert protocol.read_samples(str(tmp_path / "results"), "c" * 40, since=time.time() + 60) == {}


def test_plan_fits_the_budget_cheapest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(protocol, "Session", lambda *a, **k: FakeSession(str(tmp_path), ["b", "c"], "x", {}))
    g = gate.Gate("b", "c", "x", str(tmp_path), budget_s=600, long_s=5.0, log=lambda m: None)
    known = {f"cheap{i}": 1.0 for i in range(50)}
    known.update({"mid": 20.0, "giant": 200.0, "long": 6.0})
    twice, once, over = g.plan(known)
    room = (1 - gate.CONFIRM_SHARE) * 600 - 2 * gate.ROUND_OVERHEAD
    spent = 4 * sum(known[k] for k in twice) + 2 * sum(known[k] for k in once)
    assert spent <= room
    assert set(twice) == {f"cheap{i}" for i in range(50)}  # 200 s in two rounds
    assert "long" in once  # past --long: one process a side
    assert "giant" in over  # 400 s a side does not fit
    assert sorted(twice + once + over) == sorted(known)


def test_protocol_keeps_costs_and_excludes_cases(tmp_path, monkeypatch):
    import re

    path = str(tmp_path / "costs.json")
    monkeypatch.undo()  # the real load_costs
    protocol.save_costs({"a": 1.0}, path)
    protocol.save_costs({"b": 2.0}, path)
    assert protocol.load_costs(path) == {"a": 1.0, "b": 2.0}
    rx = re.compile(protocol.excluding(r"^ops\.", ["ops.X.time_op('big', 'mlx_cpu')"]))
    assert rx.search("ops.X.time_op('small', 'mlx_cpu')")
    assert not rx.search("ops.X.time_op('big', 'mlx_cpu')")
    assert not rx.search("models.Y")


def test_gate_follows_the_plan_from_known_costs(monkeypatch, tmp_path):
    factors = {**cases(20), "ops.M.time_op('giant', 'mlx_cpu')": 1.0, "ops.M.time_op('mid', 'mlx_cpu')": 1.0}
    costs = {k: 0.5 for k in cases(20)}
    costs.update({"ops.M.time_op('giant', 'mlx_cpu')": 1000.0, "ops.M.time_op('mid', 'mlx_cpu')": 30.0})
    monkeypatch.setattr(protocol, "load_costs", lambda path=None: costs)
    monkeypatch.setattr(protocol, "Session", lambda folder, commits, bench, **kw: FakeSession(
        folder, commits, ".", factors))
    g = gate.Gate("base", "cand", ".", str(tmp_path), log=lambda m: None)
    g.run()
    assert "ops.M.time_op('giant', 'mlx_cpu')" not in g.results
    assert g.as_json()["over_budget"] == {"ops.M.time_op('giant', 'mlx_cpu')": 1000.0}
    mid = g.results["ops.M.time_op('mid', 'mlx_cpu')"]
    assert (mid.n_base, mid.n_cand) == (1, 1) and mid.verdict == vd.SAME
    assert all(g.results[k].n_base >= 2 for k in cases(20))


def test_case_costs_split_a_benchmarks_duration_by_its_calls():
    costs = protocol.case_costs(100.0, {"giant": [37.0], "small": [0.1, 0.1, 0.1]})
    assert costs["giant"] == pytest.approx(74.0 + (100 - 74.4) / 2)
    assert costs["small"] == pytest.approx(0.4 + (100 - 74.4) / 2)


def test_asv_rule_matches_asv_continuous():
    from studies import calibrate

    same = [0.010, 0.0101, 0.0099, 0.0100, 0.0102, 0.0098, 0.0100, 0.0101]
    slow = [x * 1.3 for x in same]
    assert calibrate.asv_rule(same, slow) == vd.SLOWER
    assert calibrate.asv_rule(slow, same) == vd.FASTER
    assert calibrate.asv_rule(same, [x * 1.05 for x in same]) is None  # under the factor
    # one sample a side: asv falls back to the factor alone
    assert calibrate.asv_rule([1.0], [1.2]) == vd.SLOWER


def test_confirmation_measures_changed_cases_first(tmp_path, monkeypatch):
    monkeypatch.setattr(protocol, "Session", lambda *a, **k: FakeSession(str(tmp_path), ["b", "c"], "x", {}))
    g = gate.Gate("b", "c", "x", str(tmp_path), log=lambda m: None)
    g.session.cost = {"dear-slower": 9.0, "cheap-undecided": 0.1, "near": 1.0, "far": 0.5, "hopeless": 0.2}

    def verdict(key, what, needed=None):
        return vd.Verdict(key, what, 1.1, 0.9, 1.3, 0.01, 2, 2, 10, 0.03, needed)

    open_cases = [verdict("cheap-undecided", vd.UNDECIDED, 6), verdict("far", vd.UNDECIDED, 30),
                  verdict("hopeless", vd.UNDECIDED, None), verdict("near", vd.UNDECIDED, 2),
                  verdict("dear-slower", vd.SLOWER)]
    order = [v.key for v in sorted(open_cases, key=lambda v: g._priority(v, v.key))]
    # a change first, however dear; then the undecided by rounds needed x cost
    assert order == ["dear-slower", "cheap-undecided", "near", "hopeless", "far"]


@pytest.mark.parametrize("project_results, repeat", [(False, "repeat=1,5,1.0"), (True, None)])
def test_comparisons_take_few_samples_a_process(tmp_path, monkeypatch, project_results, repeat):
    """Comparison sessions ask asv for few samples a process (their unit is the
    process); the main job's results, which the site shows, keep each class's."""
    seen = []

    def fake_run(cmd, **kw):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, stdout="asv: stopped here\n")

    monkeypatch.setattr(protocol.subprocess, "run", fake_run)
    session = protocol.Session(str(tmp_path / "run"), ["a" * 40, "b" * 40], "^ops\\.ReLU\\.",
                               project_results=project_results)
    with pytest.raises(protocol.ProtocolError, match="asv run failed"):
        session.round()
    (cmd,) = [c for c in seen if "run" in c and "--bench" in c]
    given = [cmd[i + 1] for i, c in enumerate(cmd) if c == "-a"]
    assert "rounds=1" in given
    assert [g for g in given if g.startswith("repeat=")] == ([repeat] if repeat else [])


def test_replay_decides_as_the_gate_did(monkeypatch, tmp_path):
    """tools/gate.py's replay, given the rounds a gate recorded, reaches the
    gate's own verdicts (the calibration's --replay rests on this)."""
    factors = {**cases(20), **cases(3, 1.25, name="ops.G.time_op"), **cases(2, 0.8, name="ops.H.time_op")}
    g = fake_gate(monkeypatch, tmp_path, factors)
    again = gate.replay(g.session.data, "base", "cand")
    assert sorted(again) == sorted(g.results)
    assert {k: v.verdict for k, v in again.items()} == {k: v.verdict for k, v in g.results.items()}
    assert {k: round(v.lo, 9) for k, v in again.items()} == {k: round(v.lo, 9) for k, v in g.results.items()}


def test_stages_of_a_case():
    assert gate.stages_of(0) == [] and gate.stages_of(1) == [1] and gate.stages_of(2) == [2]
    assert gate.stages_of(6) == [2, 2, 2] and gate.stages_of(5) == [1, 2, 2]


def test_calibration_summary_replays_recorded_rounds(monkeypatch, tmp_path):
    """calibrate.py --summary --replay decides a recorded gate run again from
    its rounds.json, whatever verdicts the run recorded."""
    from studies import calibrate

    factors = {**cases(20), **cases(3, 1.25, name="ops.G.time_op")}
    g = fake_gate(monkeypatch, tmp_path / "gate", factors)
    folder = tmp_path / "calibration"
    (folder / "calib-1").mkdir(parents=True)
    (folder / "calib-1" / "rounds.json").write_text(json.dumps({"data": g.session.data}))
    recorded = [dict(key=k, factor=1.25 if "ops.G" in k else 1.0, verdict=vd.UNDECIDED, ratio=1.0, lo=0.5, hi=2.0,
                     base_s=0.01, mde=0.5, note="") for k in sorted(factors)]
    run = {"run": "calib-1", "kind": "gate", "release": "v0.3.0", "twin": "cand", "seconds": 60, "rounds": 4,
           "stages": 2, "alpha": vd.ALPHA, "min_effect": vd.MIN_EFFECT, "cases": recorded}
    (folder / "calib-1" / "calibration.json").write_text(json.dumps(run))
    monkeypatch.setattr(protocol, "resolve_quiet", lambda r: "base")
    again = calibrate.replayed(calibrate.load_runs(str(folder))[0], str(folder))
    assert {c["key"]: c["verdict"] for c in again["cases"]} == {k: v.verdict for k, v in g.results.items()}
    text = calibrate.summarize([again], str(folder))
    assert "3/3 (100%)" in text and "false alarms: 0 of 20" in text


def test_processes_needed_for_a_power_target():
    """The processes a side a case needs for a target, from its noise: the
    normal-theory sample size, worked by hand for sd 2% (log), +10% at 90%
    power, alpha 0.001/3, min_effect 2%: z = 3.588 + 1.282 = 4.870, gap =
    log 1.1 - log 1.02 = 0.0755, n = 2 (4.870 x 0.02 / 0.0755)^2 = 3.33 -> 4."""
    from studies import calibrate

    assert calibrate.processes_needed(0.02, 0.10, 0.90, 0.001 / 3, 0.02) == 4
    # four times the noise needs sixteen times the processes (up to rounding)
    assert calibrate.processes_needed(0.08, 0.10, 0.90, 0.001 / 3, 0.02) == math.ceil(16 * 3.3257)
    assert calibrate.processes_needed(0.001, 0.10, 0.90, 0.001 / 3, 0.02) == 2  # never fewer than two
    assert calibrate.processes_needed(0.02, 0.01, 0.90, 0.001 / 3, 0.02) == math.inf  # under min_effect


def test_target_costs_price_each_case_from_its_recorded_noise(tmp_path):
    """calibrate.target_costs: each case's noise from its recorded processes
    (both sides of an A/A case, the base side of an injected one), its cost
    from costs.json, summed over both sides."""
    from studies import calibrate

    rng = np.random.default_rng(3)
    data, cases_ = {}, []
    for i, (sd, factor) in enumerate([(0.021, 1.0)] * 4 + [(0.08, 1.2)]):
        key = f"ops.K{i}.time_op('c', 'mlx_cpu')"
        base = [[0.01 * math.exp(x)] for x in rng.normal(0, sd, 200)]
        # the twin of an injected case is slowed and noisier: left out of the noise
        cand = [[0.01 * factor * math.exp(x)] for x in rng.normal(0, sd * (1 if factor == 1.0 else 5), 200)]
        data[key] = {"base": base, "twin": cand}
        cases_.append(dict(key=key, factor=factor, verdict=vd.UNDECIDED, base_s=0.01))
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "rounds.json").write_text(json.dumps({"data": data}))
    run = {"run": "r1", "kind": "gate", "twin": "twin", "alpha": 0.001, "min_effect": 0.02, "cases": cases_}
    noise = calibrate.noise_by_case([run], str(tmp_path))
    assert noise["ops.K4.time_op('c', 'mlx_cpu')"][1] == 199  # base side only
    assert math.sqrt(noise["ops.K4.time_op('c', 'mlx_cpu')"][0]) == pytest.approx(0.08, rel=0.15)
    costs = {c["key"]: 0.5 for c in cases_}
    ten, twenty = calibrate.target_costs([run], str(tmp_path), costs)
    assert ten["cases"] == 5 and ten["within_4"] == 4 and ten["median"] == 4
    need = [calibrate.processes_needed(math.sqrt(v), 0.10, 0.90, 0.001 / 3, 0.02) for v, _ in noise.values()]
    assert sorted(need)[:4] == [4, 4, 4, 4] and sorted(need)[4] > 40
    assert ten["hours"] == pytest.approx(sum(2 * n * 0.5 for n in need) / 3600)
    # +20% at 99%: n = 2 (5.914 sd / 0.1625)^2: 1.2 -> 2 at sd 2.1%, 17 at sd 8%
    assert twenty["median"] == 2 and twenty["within_4"] == 4


@pytest.mark.parametrize("shared, expect", [(0.0, (0.8, 1.2)), (0.05, (0.0, 0.3))])
def test_pairing_ratio_tells_round_noise_from_process_noise(tmp_path, shared, expect):
    """calibrate.pairing_ratio: where the noise is a moment shared by both sides
    of a round (``shared``), paired differences are much narrower than the
    processes; where it belongs to each process, they are not."""
    from studies import calibrate

    rng = np.random.default_rng(5)
    data, cases_ = {}, []
    for i in range(30):
        key = f"ops.K{i}.time_op('c', 'mlx_cpu')"
        moment = rng.normal(0, shared, 8)
        data[key] = {side: [[0.01 * math.exp(m + x)] for m, x in zip(moment, rng.normal(0, 0.01, 8))]
                     for side in ("base", "twin")}
        cases_.append(dict(key=key, factor=1.0))
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "rounds.json").write_text(json.dumps({"data": data}))
    ratio, n = calibrate.pairing_ratio([{"run": "r1", "cases": cases_}], str(tmp_path))
    assert n == 30 and expect[0] < ratio < expect[1]


def test_calibration_power_table_has_a_row_per_backend(tmp_path):
    """The power table splits cases of 1 ms or more by backend (MLX's rows are
    what a release changes), each row counting only its backend's cases."""
    from studies import calibrate

    def case(key, factor, verdict, base_s=0.01):
        return dict(key=key, factor=factor, verdict=verdict, ratio=factor, lo=1.0, hi=1.3, base_s=base_s,
                    mde=0.2, note="")

    cases_ = [case("ops.F.time_op('a', 'mlx_cpu')", 1.2, vd.SLOWER),
              case("ops.F.time_op('b', 'mlx_cpu')", 1.2, vd.SLOWER),
              case("ops.F.time_op('a', 'torch_cpu')", 1.2, vd.UNDECIDED),
              case("ops.F.time_op('c', 'torch_cpu')", 1.2, vd.SLOWER, base_s=1e-4),  # under 1 ms: not in the rows
              case("ops.F.time_op('d', 'mlx_cpu')", 1.0, vd.SAME)]
    run = {"run": "calib-1", "kind": "gate", "release": "v0.3.0", "twin": "cand", "seconds": 60, "rounds": 2,
           "stages": 1, "alpha": vd.ALPHA, "min_effect": vd.MIN_EFFECT, "cases": cases_}
    text = calibrate.summarize([run], str(tmp_path))
    assert "| mlx_cpu, >= 1 ms | 2/2 (100%) |" in text
    assert "| torch_cpu, >= 1 ms | 0/1 (0%) |" in text
    assert "| all >= 1 ms | 2/3 (67%) |" in text


# --------------------------------------------------------------------------
# --instructions: the work of the slower and undecided CPU cases beside their time
# --------------------------------------------------------------------------


def fake_count_run(factor_of, seen):
    """Stands in for instructions.count_run: counts of each case, the candidate's times factor_of(key)."""
    def run(names, commits, todo, folder, calls=1, log=None, use_store=False):
        seen.append((names, commits, [t[0] for t in todo], calls))
        counts = {names[0]: {t[0]: {"counts": [1000000], "functions": {"f": 1000000}} for t in todo},
                  names[1]: {t[0]: {"counts": [round(1000000 * factor_of(t[0]))], "functions": {"f": 1}}
                             for t in todo}}
        report = instructions.build_report(names, counts, calls, 1, vd.MIN_EFFECT)
        report.update(seconds=12.0)
        return report
    return run


def test_instructions_show_the_work_beside_each_slower_case(monkeypatch, tmp_path):
    slow = {f"ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu')": 1.25, "ops.Sum.time_op('dim=64x128x128x128 axis=0', 'mlx_cpu')": 1.25}
    factors = {**cases(20), **slow, "ops.ReLU.time_op('dim=128x16x1024', 'mlx_gpu')": 1.25}
    g = fake_gate(monkeypatch, tmp_path, factors)
    report = g.as_json()
    seen = []
    work = gate.count_work(report, ("v1", "v2"), ("b" * 40, "c" * 40), str(tmp_path), log=lambda m: None,
                           count_run=fake_count_run(lambda k: 1.4 if "ReLU" in k else 1.0, seen))
    # every mlx_cpu case of ops.py in the report was counted (the F cases are no real family), both sides, one call
    assert seen == [(["v1", "v2"], ["b" * 40, "c" * 40], sorted(slow), 1)]
    assert work["cases"]["ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu')"]["verdict"] == vd.SLOWER
    report["instructions"] = work
    text = gate.markdown(report)
    assert "work: 1.400x instructions, more" in text and "work: 1.000x instructions, same" in text
    assert "Work verdicts of 2 mlx_cpu cases" in text and "1 more, 1 same" in text
    assert "- more work: 1.400x instructions, most in f (1M -> 1): ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu')" in text
    assert "python tools/instructions.py" not in text  # counted: no hint to count them
    assert gate.exit_status(report) == 1  # more work fails the gate, whatever the time says
    assert "not made" in gate.work_paragraph({"error": "valgrind is not installed"})


def test_instructions_exit_codes(monkeypatch, tmp_path, small_ledger):
    monkeypatch.setattr(ledger, "DEFAULT_REPO", small_ledger)
    monkeypatch.setattr(protocol, "resolve", lambda name, repo=None: {"v0.2.0": "b" * 40, "v0.3.0": "c" * 40}[name])
    monkeypatch.setattr(ledger, "ensure", lambda **kw: None)
    monkeypatch.setattr(protocol, "describe", lambda c, repo=None: c[:8])
    slow = cases(2, 1.3, name="ops.G.time_op")
    real = {"ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu')": 1.0}  # a case of ops.py: its work is counted
    # no valgrind: one line, exit 2, before any measuring
    monkeypatch.setattr(instructions, "check_tools", lambda **kw: (_ for _ in ()).throw(
        instructions.InstructionsError("valgrind is not installed (Debian: apt install valgrind)")))
    monkeypatch.setattr(protocol, "Session", lambda *a, **kw: pytest.fail("measured without valgrind"))
    assert gate.main(["v0.2.0", "v0.3.0", "--out", str(tmp_path / "none")]) == 2  # on by default
    monkeypatch.setattr(instructions, "check_tools", lambda **kw: None)

    def failing(*a, **kw):
        raise instructions.InstructionsError("fewer than two of v0.2.0 installed")

    monkeypatch.setattr(instructions, "count_run", failing)
    for factors, code in ((cases(20), 0), ({**cases(20), **cases(2, 0.7, name="ops.G.time_op")}, 0),
                          ({**cases(20), **slow}, 1), ({**cases(20), **real}, 0), ({**cases(20), **real, **slow}, 1)):
        monkeypatch.setattr(protocol, "Session", lambda folder, commits, bench, f=factors, **kw: FakeSession(
            folder, commits, bench, f))
        out = tmp_path / f"run{len(factors)}{code}"
        got = gate.main(["v0.2.0", "v0.3.0", "--out", str(out)])
        report = json.loads((out / "verdicts.json").read_text())
        counted = any(k in report["cases"][i]["key"] for i in range(len(report["cases"])) for k in real)
        # a confirmed slowdown stays exit 1; else counting that failed is exit 2, nothing to count is 0
        assert got == (1 if code == 1 else (2 if counted else 0)), (factors, got)
        if counted:
            assert "not made: fewer than two" in (out / "verdicts.md").read_text()
    # more work fails the gate though the time is the same; --no-instructions leaves the counts out
    monkeypatch.setattr(instructions, "count_run", fake_count_run(lambda k: 1.05, []))
    monkeypatch.setattr(protocol, "Session", lambda folder, commits, bench, **kw: FakeSession(
        folder, commits, bench, {**cases(20), **real}))
    out = tmp_path / "more-work"
    assert gate.main(["v0.2.0", "v0.3.0", "--out", str(out)]) == 1
    assert "- more work: 1.050x instructions" in (out / "verdicts.md").read_text()
    out = tmp_path / "no-work"
    assert gate.main(["v0.2.0", "v0.3.0", "--no-instructions", "--out", str(out)]) == 0
    assert "instructions" not in json.loads((out / "verdicts.json").read_text())
    # interrupted while counting: the time verdicts were written before, and stay
    monkeypatch.setattr(instructions, "count_run", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt()))
    out = tmp_path / "interrupted"
    monkeypatch.setattr(protocol, "Session", lambda folder, commits, bench, **kw: FakeSession(
        folder, commits, bench, {**cases(20), **real, **slow}))
    assert gate.main(["v0.2.0", "v0.3.0", "--out", str(out)]) == 1
    report = json.loads((out / "verdicts.json").read_text())
    assert report["summary"][vd.SLOWER] == 2 and report["instructions"] == {"error": "interrupted"}
