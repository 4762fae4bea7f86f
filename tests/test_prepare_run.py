"""gpu/prepare_run.py: which cases it prepares, how it splits the kernel builds, and its workers."""

import os
import subprocess
import sys

import pytest

from benchmarks import common, ops
from gpu import prepare_run as pr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_REGEX = r"^ops\.(track_mlx_version$|[^(]*\(.*'(mlx_gpu|mlx_gpu_compile|torch_cuda)'\)$)"


def test_selection_is_asvs_for_the_readme_command():
    sel = pr.cases(README_REGEX)
    # 91 cases on three GPU backends, and Compile's 4 on mlx_gpu (track_mlx_version is no case)
    assert len(sel) == 91 * 3 + 4
    assert {be for _, _, be, _ in sel} == {"mlx_gpu", "mlx_gpu_compile", "torch_cuda"}
    name, label, be, asv_name = next(x for x in sel if x[0] == "Sum")
    assert asv_name == f"ops.Sum.time_op({label!r}, {be!r})"
    assert ("Compile", ops.Compile.cases[0].label, "mlx_gpu",
            f"ops.Compile.time_compile({ops.Compile.cases[0].label!r}, 'mlx_gpu')") in sel
    assert len(pr.cases(r"^ops\.Sum\.[^(]*\(.*'mlx_cpu'\)$")) == 4
    assert len(pr.cases()) == 91 * 6 + 4 * 2


def test_kernel_builds_are_the_mlx_gpu_cases_compile_first():
    sel = pr.cases(README_REGEX)
    builds = pr.kernel_builds(sel)
    assert sorted(builds) == sorted((n, lab, be) for n, lab, be, _ in sel if be in pr.KERNEL_BACKENDS)
    assert len(builds) == 91 * 2 + 4
    assert [b[0] for b in builds[:4]] == ["Compile"] * 4
    assert pr.kernel_builds([x for x in sel if x[2] == "torch_cuda"]) == []


def test_build_one_builds_calls_skips_and_reports_failures(monkeypatch):
    calls = []
    real = ops.Softmax.callable.__func__

    def spy(cls, label, be, small=False):
        calls.append((cls.__name__, be, small))
        if cls is ops.Sum:
            raise RuntimeError("cudaGraphAddKernelNode failed\nmore")
        return real(cls, label, be, small)

    monkeypatch.setattr(common.CaseTable, "callable", classmethod(spy))
    monkeypatch.delenv(common.SELECTED_ENV, raising=False)
    label = ops.Softmax.cases[0].label
    missing = "torch_cuda" if common.unavailable_reason("torch_cuda") else "torch_mps"
    r = pr.worker_summary([pr.build_one(("Softmax", label, "mlx_cpu", True)),
                           pr.build_one(("Softmax", label, missing, True)),
                           pr.build_one(("Sum", ops.Sum.cases[0].label, "mlx_cpu", True))])
    assert r["done"] == 1 and r["skipped"] == 1
    assert len(r["failed"]) == 1 and r["failed"][0].startswith("Sum ") and "more" not in r["failed"][0]
    assert all(small for _, _, small in calls)
    assert len(common.CACHE) == 0  # nothing kept between builds


def test_warm_kernels_spreads_builds_over_fresh_processes(monkeypatch):
    # On the CPU box the same machinery runs mlx_cpu builds at the small size.
    monkeypatch.setenv(common.SELECTED_ENV, "mlx_cpu")
    builds = [("Sigmoid", c.label, "mlx_cpu") for c in ops.Sigmoid.cases] + [("Softmax", ops.Softmax.cases[0].label, "mlx_cpu")]
    summary, n, _ = pr.warm_kernels(builds, 2, small=True)
    assert n == 2 and summary == {"done": 3, "skipped": 0, "failed": []}
    summary, _, _ = pr.warm_kernels([("Sigmoid", ops.Sigmoid.cases[0].label, "torch_cuda")], 4, small=True)
    assert summary["skipped"] == 1


def test_fill_inputs_writes_each_cases_inputs_once(tmp_path, monkeypatch):
    monkeypatch.setenv(common.INPUT_CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(common, "INPUT_CACHE_MIN_BYTES", 0)  # the Compile cases' inputs are small
    sel = pr.cases(r"^ops\.Compile\.")
    n, _ = pr.fill_inputs(sel, 2)
    assert n == 4
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 10  # softmax 1, layer_norm 3, gelu_mlp 3, attention 3 (its mask is not random)
    # the case processes find them: made again, the same bits, nothing new written
    label = ops.Compile.cases[1].label
    ops.Compile.inputs(ops.Compile.case(label).args, ("benchmarks.ops", "Compile", label, False))
    assert sorted(os.listdir(tmp_path)) == files


def test_main_without_a_gpu_prepares_inputs_only(tmp_path):
    env = dict(os.environ, MLX_ASV_INPUT_CACHE="off")
    proc = subprocess.run([sys.executable, "gpu/prepare_run.py", "--bench", r"^ops\.Compile\."],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    if common.unavailable_reason("mlx_gpu") is not None:
        assert line.startswith("prepare_run: kernels: none (")
