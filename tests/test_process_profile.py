"""studies/process_profile.py and the events benchmarks/common.py writes under MLX_ASV_PROFILE."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import common
from studies import process_profile as pp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(path, events):
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
        f.write('{"t": 1')  # a torn last line (a process killed mid-write)


def _ev(t, pid, ev, **info):
    return dict(t=t, pid=pid, ev=ev, **info)


EVENTS = [
    _ev(100.0, 1, "fork"), _ev(100.1, 1, "setup", bench="Sum", case="c", backend="mlx_gpu"),
    _ev(100.4, 1, "mlx_imported"), _ev(100.45, 1, "ledger_checked"), _ev(100.5, 1, "build"),
    _ev(100.8, 1, "inputs"), _ev(101.0, 1, "on_device"), _ev(101.2, 1, "built"),
    _ev(101.3, 1, "setup", bench="Sum", case="c", backend="mlx_gpu"),
    _ev(101.5, 1, "setup", bench="Sum", case="c", backend="mlx_gpu"),
    _ev(101.7, 2, "fork"), _ev(101.8, 2, "setup", bench="Sum", case="c", backend="torch_cuda"),
    _ev(101.9, 2, "build"), _ev(102.0, 2, "built"), _ev(102.05, 2, "setup", bench="Sum", case="c", backend="torch_cuda"),
]


def test_phases_add_up_to_the_process_wall(tmp_path):
    path = tmp_path / "p.jsonl"
    _write(path, EVENTS[::-1])  # any order: sorted by time
    procs = pp.processes(pp.read_events(path))
    assert [p["backend"] for p in procs] == ["mlx_gpu", "torch_cuda"]
    first = procs[0]
    ph = first["phases"]
    assert ph["start"] == pytest.approx(0.1)
    assert ph["mlx_import"] == pytest.approx(0.3)
    assert ph["ledger"] == pytest.approx(0.05)
    assert ph["inputs"] == pytest.approx(0.3)
    assert ph["to_device"] == pytest.approx(0.2)
    assert ph["warmup"] == pytest.approx(0.2)
    assert ph["sampling"] == pytest.approx(0.3)
    assert ph["tail"] == pytest.approx(0.2)
    assert sum(ph.values()) == pytest.approx(first["total"]) == pytest.approx(1.7)
    assert first["setups"] == 3
    # The run's last process has no next fork: no tail, no total.
    assert "tail" not in procs[1]["phases"] and procs[1]["total"] is None
    # Without the finer build events the whole build is the warm-up.
    assert procs[1]["phases"]["warmup"] == pytest.approx(0.1)
    assert "inputs" not in procs[1]["phases"]


def test_summary_sums_and_medians(tmp_path):
    path = tmp_path / "p.jsonl"
    _write(path, EVENTS)
    s = pp.summarize(pp.processes(pp.read_events(path)), "all")["all"]
    assert s["n"] == 2
    assert s["start"]["sum"] == pytest.approx(0.2)
    assert s["warmup"]["median"] == pytest.approx(0.15)
    assert s["inputs"]["sum"] == pytest.approx(0.3)
    assert pp.main([str(path), "--by", "bench+backend"]) == 0


def test_no_events_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(common.PROFILE_ENV, raising=False)
    common.profile_event("setup", bench="x")
    monkeypatch.setenv(common.PROFILE_ENV, str(tmp_path / "p.jsonl"))
    common.profile_event("setup", bench="x")
    common.profile_event("built")
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [x["ev"] for x in lines] == ["setup", "built"]
    assert lines[0]["bench"] == "x" and lines[0]["pid"] == os.getpid()


def test_a_forked_child_logs_its_fork_and_build(tmp_path):
    # As asv's forkserver runs it: the server imports common with argv[1] == run_server,
    # then forks a child that builds a case.
    prof = tmp_path / "p.jsonl"
    code = (
        "import os, sys; sys.argv = ['asv_runner', 'run_server']\n"
        "from benchmarks import common, ops\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ops.Sum.callable(ops.Sum.cases[0].label, 'torch_cpu', small=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    env = dict(os.environ, MLX_ASV_PROFILE=str(prof), MLX_ASV_BACKENDS="torch_cpu")
    env.pop("ASV_COMMIT", None)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=300)
    procs = pp.processes(pp.read_events(prof))
    assert len(procs) == 1
    p = procs[0]
    assert (p["bench"], p["backend"]) == ("Sum", "torch_cpu")
    assert {"start", "backend", "inputs", "to_device", "warmup"} <= set(p["phases"])
