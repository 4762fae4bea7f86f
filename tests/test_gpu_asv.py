"""mlx_asv/gpu/gpu_asv.sh exits with asv run's status, and non-zero when any step fails.

Run with a stub for its Python (PYTHON=...): the stub answers the MLX version,
the ledger look-up, ``asv machine`` and ``asv run`` with the statuses a test
asks for, and records how it was called. Nothing real is installed or run.
"""

import os
import stat
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "mlx_asv", "gpu", "gpu_asv.sh")

STUB = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$*" in
  "-c import sys; from mlx_asv.measure.protocol import selects_models"*) exec "$REAL_PYTHON" "$@" ;;
  "-c "*) [ -n "${FAKE_NO_MLX:-}" ] && exit 1; echo 0.32.4 ;;
  "tools/ledger.py --offline --list") printf 'v0.32.3\t2025-01-01T00:00:00+00:00\tcafe\nv0.32.4\t2025-02-01T00:00:00+00:00\tdeadbeef\n' ;;
  "tools/ledger.py --offline") exit "${FAKE_LEDGER_RC:-0}" ;;
  "-m asv machine "*) exit "${FAKE_MACHINE_RC:-0}" ;;
  "-m asv run "*) echo "fake asv run"; echo "preload=${MLX_ASV_PRELOAD_MODELS:-unset}"; exit "${FAKE_RUN_RC:-0}" ;;
  "-m mlx_asv.gpu.prepare_run "*) echo "fake prepare"; exit "${FAKE_PREPARE_RC:-0}" ;;
  *) echo "stub: unexpected call: $*" >&2; exit 99 ;;
esac
"""


@pytest.fixture
def stub(tmp_path):
    path = tmp_path / "python"
    path.write_text(STUB)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def run(stub, tmp_path, out=None, bench="^ops\\.Sum", **fake):
    env = dict(os.environ, PYTHON=str(stub), FAKE_LOG=str(tmp_path / "calls.log"), REAL_PYTHON=sys.executable)
    env.update({f"FAKE_{k.upper()}": str(v) for k, v in fake.items()})
    # a machine name with no results/ folder: nothing of the project's is read or written
    machine = f"test-gpu-asv-{uuid.uuid4().hex[:8]}"
    args = ["bash", SCRIPT, machine, bench] + ([str(out)] if out else [])
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    calls = (tmp_path / "calls.log").read_text().splitlines() if (tmp_path / "calls.log").exists() else []
    return proc, calls


def test_success_exits_0_and_files_under_the_installed_release(stub, tmp_path):
    proc, calls = run(stub, tmp_path)
    assert proc.returncode == 0, proc.stderr
    asv_run = [c for c in calls if c.startswith("-m asv run ")]
    assert len(asv_run) == 1 and "--set-commit-hash deadbeef" in asv_run[0]
    # forkserver (the server holds torch, not MLX's CUDA build), samples recorded, one round
    assert "--launch-method forkserver" in asv_run[0]
    assert "--record-samples" in asv_run[0] and "-a rounds=1" in asv_run[0]
    # each step's seconds, in the order the steps ran (where the wall of a GPU run goes)
    steps = [line.split(" took ")[0][len("gpu_asv: "):] for line in proc.stderr.splitlines() if " took " in line]
    assert steps == ["MLX's import check", "the ledger", "asv machine", "mlx_asv.gpu.prepare_run", "asv run"]
    assert all(line.endswith(" s") for line in proc.stderr.splitlines() if " took " in line)


def test_spawn_and_benchmark_rounds_on_request(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("LAUNCH", "spawn")
    monkeypatch.setenv("ROUNDS", "")
    proc, calls = run(stub, tmp_path)
    assert proc.returncode == 0, proc.stderr
    asv_run = [c for c in calls if c.startswith("-m asv run ")][0]
    assert "--launch-method spawn" in asv_run and "rounds" not in asv_run


@pytest.mark.parametrize("rc", [1, 2])
def test_asv_run_status_is_the_exit_status(stub, tmp_path, rc):
    proc, _ = run(stub, tmp_path, run_rc=rc)
    assert proc.returncode == rc, proc.stdout + proc.stderr
    assert "fake asv run" in proc.stdout
    assert f"asv run exited {rc}" in proc.stdout


@pytest.mark.parametrize("fake, message", [
    ({"no_mlx": 1}, "MLX does not import"),
    ({"ledger_rc": 1}, "tools/ledger.py --offline failed"),
    ({"machine_rc": 3}, "asv machine"),
])
def test_failed_step_before_asv_run_is_non_zero(stub, tmp_path, fake, message):
    proc, calls = run(stub, tmp_path, **fake)
    assert proc.returncode == 1
    assert f"gpu_asv: {message}" in proc.stderr
    assert not any(c.startswith("-m asv run ") for c in calls)


def test_no_results_to_copy_is_non_zero(stub, tmp_path):
    out = tmp_path / "out"
    proc, _ = run(stub, tmp_path, out=out)
    assert proc.returncode == 1
    assert "no results in results/" in proc.stderr
    assert "fake asv run" in (out / next(p.name for p in out.iterdir() if p.name.endswith(".log"))).read_text()


def test_prepare_runs_first_with_the_same_selection(stub, tmp_path):
    proc, calls = run(stub, tmp_path)
    assert proc.returncode == 0, proc.stderr
    prepare = [i for i, c in enumerate(calls) if c.startswith("-m mlx_asv.gpu.prepare_run ")]
    asv_run = [i for i, c in enumerate(calls) if c.startswith("-m asv run ")]
    assert len(prepare) == 1 and prepare[0] < asv_run[0]
    assert calls[prepare[0]] == "-m mlx_asv.gpu.prepare_run --bench ^ops\\.Sum"


def test_prepare_off_and_a_failed_prepare_leave_the_run_alone(stub, tmp_path, monkeypatch):
    proc, calls = run(stub, tmp_path, prepare_rc=1)
    assert proc.returncode == 0 and "mlx_asv.gpu.prepare_run failed" in proc.stderr
    assert any(c.startswith("-m asv run ") for c in calls)
    monkeypatch.setenv("PREPARE", "0")
    (tmp_path / "calls.log").unlink()
    proc, calls = run(stub, tmp_path)
    assert proc.returncode == 0
    assert not any(c.startswith("-m mlx_asv.gpu.prepare_run") for c in calls)


@pytest.mark.parametrize("bench, preset, preload", [
    ("^ops\\.Sum", None, "0"),                      # no models.py case: the forkserver skips transformers
    ("^ops\\.(?!(MatMul)\\.)", None, "0"),
    ("(", None, "1"),                                # a regex Python can't read: kept, the safe side
    ("^models\\.(Inference\\.time_forward)\\(.*'(mlx_gpu|torch_cuda)'\\)$", None, "1"),
    (".", None, "1"),
    ("^ops\\.Sum", "1", "1"),                       # set by the caller: kept
])
def test_forkserver_imports_transformers_only_for_models(stub, tmp_path, monkeypatch, bench, preset, preload):
    monkeypatch.delenv("MLX_ASV_PRELOAD_MODELS", raising=False)
    if preset is not None:
        monkeypatch.setenv("MLX_ASV_PRELOAD_MODELS", preset)
    proc, _ = run(stub, tmp_path, bench=bench)
    assert proc.returncode == 0, proc.stderr
    assert f"preload={preload}" in proc.stdout
