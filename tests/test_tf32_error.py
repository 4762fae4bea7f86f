"""studies/tf32_error.py, the command behind the TF32 figures of docs/gpu.md: it needs a
GPU, so here it must stop with one line; its measures and table are checked
on the CPU backends."""

import os
import subprocess
import sys

import pytest

from benchmarks import common
from studies import tf32_error as te

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(common.mlx() is None, reason="needs MLX")
def test_without_a_gpu_one_line_and_failure():
    reason = common.unavailable_reason("mlx_gpu")
    if reason is None:
        pytest.skip("this machine has an MLX GPU backend")
    proc = subprocess.run([sys.executable, "-m", "studies.tf32_error", "--no-model"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines == [f"tf32_error: needs MLX's GPU backend (mlx_gpu: {reason}); run it on the GPU machine"]


@pytest.mark.parametrize("be_name", ["mlx_cpu", "torch_cpu"])
def test_matmul_error_measure_on_the_cpu(be_name, monkeypatch):
    monkeypatch.delenv(common.SELECTED_ENV, raising=False)
    if common.unavailable_reason(be_name):
        pytest.skip(common.unavailable_reason(be_name))
    err = te.matmul_errors(be_name)
    # float32 accumulation on the CPU: far below TF32's ~3e-4, above float64's
    assert 1e-9 < err["rel_fro"] < 1e-5
    assert 1e-9 < err["max_abs_rel"] < 1e-5


def test_table_of_both_settings():
    ok = {"matmul": {"mlx_gpu": {"rel_fro": 3.1e-4, "max_abs_rel": 2.9e-4},
                     "torch_cuda": {"rel_fro": 1.4e-6, "max_abs_rel": 1.2e-6}},
          "model": {"mlx_gpu": {"max_abs": 4.0e-3}, "torch_cuda": {"skipped": "torch has no CUDA device here"}}}
    off = {"matmul": {"mlx_gpu": {"rel_fro": 1.3e-6, "max_abs_rel": 1.1e-6},
                      "torch_cuda": {"failed": "RuntimeError: boom"}},
           "model": {}}
    text = te.table([("MLX default (TF32)", ok), ("MLX_ENABLE_TF32=0", off)])
    rows = [ln for ln in text.splitlines() if ln.startswith("| MLX")]
    assert rows[0] == "| MLX default (TF32) | 3.1e-04 (2.9e-04) | 1.4e-06 (1.2e-06) | 4.0e-03 | n/a |"
    assert rows[1] == ("| MLX_ENABLE_TF32=0 | 1.3e-06 (1.1e-06) | failed | not run (--no-model) "
                       "| not run (--no-model) |")
    assert "torch_cuda (model): torch has no CUDA device here" in text
    assert "torch_cuda (matmul): RuntimeError: boom" in text


def test_settings_are_default_and_off():
    assert te.SETTINGS == (("MLX default (TF32)", None), ("MLX_ENABLE_TF32=0", "0"))


def test_child_on_the_cpu_backends(monkeypatch):
    """What one setting's process reports, with the CPU backends standing in."""
    monkeypatch.delenv(common.SELECTED_ENV, raising=False)
    if common.mlx() is None:
        pytest.skip("needs MLX")
    out = te.child(False, backends=("mlx_cpu", "torch_cuda"))
    assert out["mlx"] == common.mlx().__version__
    assert out["matmul"]["mlx_cpu"]["rel_fro"] < 1e-5
    reason = common.unavailable_reason("torch_cuda")
    if reason is not None:
        assert out["matmul"]["torch_cuda"] == {"skipped": reason}
    assert out["model"] == {}
