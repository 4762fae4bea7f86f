"""The one rounds loop (issue 26): ``protocol.run_rounds``, which asv's path
(``Session.round``), the torch matrix (``torch_matrix.compare``) and the GPU
rounds (``gpu_rounds.Driver``) all go through, and the orders of their sides,
which must be what each gave before the loops were one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from mlx_asv.commands import torch_matrix as tm
from mlx_asv.gpu import gpu_rounds
from mlx_asv.measure import protocol

SIDES = range(2, 7)
ROUNDS = range(1, 25)


# The formulas before the loops were one, copied as they were: protocol.round_order
# (Session.round and torch_matrix.compare) and gpu_rounds.order (the GPU rounds).
def old_round_order(sides, number):
    return list(sides) if number % 2 else list(sides)[::-1]


def old_gpu_order(labels, k):
    labels = list(labels)
    shift = ((k - 1) // 2) % len(labels)
    return old_round_order(labels[shift:] + labels[:shift], k)


def table(order):
    return {n: [order([chr(97 + i) for i in range(n)], k) for k in ROUNDS] for n in SIDES}


def digest(t):
    return hashlib.sha256(json.dumps(t, sort_keys=True).encode()).hexdigest()


# sha256 of table(...) as the old functions gave it, computed before the change.
OLD_ROUND_ORDER = "0b8688dc81eae8c485b2366f546faabc5fecf99486c54acb8c5ae688daf2306f"
OLD_GPU_ORDER = "04815ce137eb6c5b0752620cf1f3f3294b204067c7589b8b3d5a96f2f0d8f130"


def test_the_old_formulas_are_what_the_old_code_gave():
    assert digest(table(old_round_order)) == OLD_ROUND_ORDER
    assert digest(table(old_gpu_order)) == OLD_GPU_ORDER


def test_orders_are_unchanged_for_2_to_6_sides_and_24_rounds():
    assert table(protocol.round_order) == table(old_round_order)
    assert table(protocol.rotated_order) == table(old_gpu_order)
    assert table(gpu_rounds.order) == table(old_gpu_order)


def loop_order(order, n, rounds=24):
    ran = []
    sides = [chr(97 + i) for i in range(n)]
    assert protocol.run_rounds(sides, rounds, lambda k, s: ran.append((k, s)), order=order) is None
    return ran


@pytest.mark.parametrize("n", SIDES)
def test_the_loop_runs_the_sides_in_the_old_orders(n):
    sides = [chr(97 + i) for i in range(n)]
    assert loop_order(protocol.round_order, n) == [(k, s) for k in ROUNDS for s in old_round_order(sides, k)]
    assert loop_order(gpu_rounds.order, n) == [(k, s) for k in ROUNDS for s in old_gpu_order(sides, k)]
    rounds = []
    protocol.run_rounds(sides, 24, run_round=lambda k, ordered: rounds.append((k, ordered)))
    assert rounds == [(k, old_round_order(sides, k)) for k in ROUNDS]


def test_resume_after_round_and_a_runner_that_stops():
    ran, saved = [], []
    stop = protocol.run_rounds("abc", 3, lambda k, s: ran.append((k, s)),
                               done=lambda k, s: k == 1 or (k, s) == (2, "c"), after_round=saved.append)
    assert stop is None and ran == [(2, "b"), (2, "a"), (3, "a"), (3, "b"), (3, "c")] and saved == [2, 3]
    ran.clear()
    stop = protocol.run_rounds("ab", 2, lambda k, s: "failed" if (k, s) == (2, "b") else ran.append((k, s)),
                               after_round=saved.append)
    assert stop == "failed" and ran == [(1, "a"), (1, "b")] and saved == [2, 3, 1]
    with pytest.raises(TypeError):
        protocol.run_rounds("ab", 2)


def test_deadline_and_the_loops_own_lines():
    now = [0.0]

    def run(k, s):
        now[0] += 45.0

    lines = []
    stop = protocol.run_rounds("ab", 2, run, deadline=100.0, first_run_s=40.0, clock=lambda: now[0],
                               log=lines.append, name="gpu_rounds", where="OUT")
    assert stop == protocol.DEADLINE
    assert lines == ["gpu_rounds: stopped before round 2 side b: 10 s left, a run takes ~45 s; "
                     "2 of 4 runs in OUT (the same command goes on)"]
    lines.clear()
    assert protocol.run_rounds("ab", 2, run, done=lambda k, s: k == 1, log=lines.append, name="gpu_rounds",
                               where="OUT") is None
    assert lines == ["gpu_rounds: 2 runs already in OUT; 2 to go", "gpu_rounds: all 4 runs in OUT"]


@pytest.fixture
def through_the_loop(monkeypatch):
    """protocol.run_rounds, recording who called it and what it ran."""
    calls = []
    real = protocol.run_rounds

    def recording(sides, rounds, run_side=None, **kw):
        ran = []
        call = dict(sides=list(sides), rounds=rounds, ran=ran, mode="side" if run_side else "round")
        calls.append(call)
        if run_side:
            return real(sides, rounds, lambda k, s: ran.append((k, s)) or run_side(k, s), **kw)
        run_round = kw.pop("run_round")
        return real(sides, rounds, run_round=lambda k, o: ran.append((k, o)) or run_round(k, o), **kw)

    monkeypatch.setattr(protocol, "run_rounds", recording)
    return calls


def fake_asv(monkeypatch, outcome=lambda: 0):
    """protocol.run_asv writing a results file for every commit of the round's hash file."""
    def run_asv(cmd, config, environ=None, quiet=True):
        hashfile = [c for c in cmd if c.startswith("HASHFILE:")][0][len("HASHFILE:"):]
        results = os.path.join(os.path.dirname(config), "results", "m")
        os.makedirs(results, exist_ok=True)
        for commit in open(hashfile).read().split():
            with open(os.path.join(results, commit[:8] + ".json"), "w") as f:
                json.dump({"commit_hash": commit, "result_columns": ["result", "samples", "duration"],
                           "results": {"ops.F.time_op": [[1.0], [[1.0]], 2.0]}}, f)
        return subprocess.CompletedProcess(cmd, outcome(), stdout="")

    monkeypatch.setattr(protocol, "run_asv", run_asv)
    monkeypatch.setattr(protocol, "save_costs", lambda costs, path=None: None)
    monkeypatch.setattr(protocol, "derived_config",
                        lambda folder, env_nobuild=None, conf_path=None: os.path.join(folder, "asv.conf.json"))


def test_session_round_goes_through_the_loop(through_the_loop, monkeypatch, tmp_path):
    fake_asv(monkeypatch)
    commits = ["a" * 40, "b" * 40, "c" * 40]
    s = protocol.Session(str(tmp_path / "s"), commits, "^ops", log=lambda m: None)
    for _ in range(3):
        s.round()
    s.round(order=commits[1:] + commits[:1])
    again = protocol.Session(str(tmp_path / "s"), commits, "^ops", log=lambda m: None)
    again.round()  # resumes at round 5
    ran = [r for c in through_the_loop for r in c["ran"]]
    assert all(c["mode"] == "round" for c in through_the_loop) and len(through_the_loop) == 5
    assert ran == [(1, commits), (2, commits[::-1]), (3, commits), (4, commits[1:] + commits[:1]), (5, commits)]
    for k, order in ran:
        assert (tmp_path / "s" / f"round{k}.hashes").read_text() == "\n".join(order) + "\n"
    saved = json.loads((tmp_path / "s" / "rounds.json").read_text())
    assert saved["rounds"] == 5 and [len(v) for v in saved["data"]["ops.F.time_op"].values()] == [5, 5, 5]


def test_torch_matrix_compare_goes_through_the_loop_and_resumes(through_the_loop, monkeypatch, tmp_path):
    n = [0]

    def outcome():  # the sixth asv run fails: round 3's second side
        n[0] += 1
        return 1 if n[0] == 6 else 0

    fake_asv(monkeypatch, outcome)
    monkeypatch.setattr(protocol, "resolve", lambda name, repo=None: "c" * 40)
    monkeypatch.setattr(tm, "side_config",
                        lambda folder, v: os.makedirs(folder, exist_ok=True) or os.path.join(folder, "asv.conf.json"))
    folder = str(tmp_path / "t")
    lines = []
    with pytest.raises(tm.MatrixError, match="round 3, torch 2.13.0: no results"):
        tm.compare("v1", ["2.2.2", "2.13.0"], "B", rounds=4, folder=folder, repo="r", asv="asv", log=lines.append)
    assert json.loads(open(os.path.join(folder, "rounds.json")).read())["rounds"] == 2
    tm.compare("v1", ["2.2.2", "2.13.0"], "B", rounds=4, folder=folder, repo="r", asv="asv", log=lines.append)
    assert [c["mode"] for c in through_the_loop] == ["side", "side"]
    assert [c["ran"] for c in through_the_loop] == [
        [(1, "2.2.2"), (1, "2.13.0"), (2, "2.13.0"), (2, "2.2.2"), (3, "2.2.2"), (3, "2.13.0")],
        [(3, "2.2.2"), (3, "2.13.0"), (4, "2.13.0"), (4, "2.2.2")]]  # round 3 again, whole
    assert [line.split(":")[0] for line in lines if line.startswith("round")] == [
        f"round {k}, torch {v}" for c in through_the_loop for k, v in c["ran"]]
    saved = json.loads(open(os.path.join(folder, "rounds.json")).read())
    assert saved["rounds"] == 4 and saved["commits"] == ["c" * 40 + "@torch2.2.2", "c" * 40 + "@torch2.13.0"]
    assert [len(v) for v in saved["data"]["ops.F.time_op"].values()] == [4, 4]


def test_gpu_rounds_goes_through_the_loop(through_the_loop, monkeypatch, tmp_path):
    out = tmp_path / "out"

    def one(self, k, label, path):
        (out / f"r{k}-{label}.json").write_text("{}")
        return gpu_rounds.OK

    monkeypatch.setattr(gpu_rounds.Driver, "one", one)
    sides = [("a", "/x/new"), ("b", "/x/new"), ("old", "/x/old")]
    lines = []
    assert gpu_rounds.Driver(sides, 4, str(out), "re", log=lines.append).run() == gpu_rounds.OK
    (out / "r3-b.json").unlink()
    assert gpu_rounds.Driver(sides, 4, str(out), "re", log=lines.append).run() == gpu_rounds.OK
    labels = ["a", "b", "old"]
    assert [c["mode"] for c in through_the_loop] == ["side", "side"]
    assert through_the_loop[0]["ran"] == [(k, s) for k in range(1, 5) for s in old_gpu_order(labels, k)]
    assert through_the_loop[1]["ran"] == [(3, "b")]
    assert lines == [f"gpu_rounds: all 12 runs in {out}", f"gpu_rounds: 11 runs already in {out}; 1 to go",
                     f"gpu_rounds: all 12 runs in {out}"]


@pytest.mark.parametrize("bench, selects", [
    (protocol.bench_regex(["mlx_cpu", "torch_cpu"]), False),   # the main job's kind of selection: ops.py only
    (r"^ops\.(?!(MatMul|Linear)\.)[^(]*\(.*'(mlx_cpu|torch_cpu)'\)$", False),
    (r"^models\.Inference\.time_forward\('roberta-base', .*'(mlx_cpu|torch_cpu)'\)$", True),
    (r"^models\.Tokens\.", True),
    (r"Softmax|Inference", True),
    ("(", True),  # Python can't read it: kept, the safe side
])
def test_selects_models(bench, selects):
    assert protocol.selects_models(bench) is selects


@pytest.mark.parametrize("bench, environ, want", [
    (r"^ops\.Sum\.", {}, "0"),
    (r"^models\.", {}, "1"),
    (r"^ops\.Sum\.", {"MLX_ASV_PRELOAD_MODELS": "1"}, "1"),  # the caller's choice is kept
])
def test_run_asv_tells_the_forkserver_whether_to_preload_models(monkeypatch, bench, environ, want):
    seen = {}
    monkeypatch.setattr(protocol.subprocess, "run", lambda cmd, **kw: seen.update(kw["env"]))
    cmd = protocol.run_command("/tmp/asv.conf.json", "/tmp/round1.hashes", bench, asv="asv")
    protocol.run_asv(cmd, "/tmp/asv.conf.json", environ=environ)
    assert seen["MLX_ASV_PRELOAD_MODELS"] == want
