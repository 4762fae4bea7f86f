"""mlx_asv/gpu/prepare_run.py: which cases it prepares, how it splits the kernel builds, and its workers."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import common, ops
from mlx_asv.gpu import prepare_run as pr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the regex of docs/gpu.md's (formerly the README's) mlx_asv/gpu/gpu_asv.sh command
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


def test_kernel_builds_keep_a_family_in_one_worker():
    sel = pr.cases(README_REGEX)
    groups = pr.kernel_groups(sel, 8)
    builds = [b for g in groups for b in g]
    assert sorted(builds) == sorted((n, lab, be) for n, lab, be, _ in sel if be in pr.KERNEL_BACKENDS)
    owner = {}
    for i, g in enumerate(groups):
        for name, _, _ in g:
            assert owner.setdefault(name, i) == i, f"{name} split over workers"
    assert len(groups) == 8
    assert max(map(len, groups)) - min(map(len, groups)) <= 12  # balanced by family sizes
    assert pr.kernel_groups([x for x in sel if x[2] == "torch_cuda"], 8) == []


def test_worker_builds_calls_skips_and_reports_failures(monkeypatch):
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
    r = pr.worker([("Softmax", label, "mlx_cpu"), ("Softmax", label, "torch_cuda" if common.unavailable_reason("torch_cuda") else "torch_mps"),
                   ("Sum", ops.Sum.cases[0].label, "mlx_cpu")], small=True)
    assert r["done"] == 1 and r["skipped"] == 1
    assert len(r["failed"]) == 1 and r["failed"][0].startswith("Sum ") and "more" not in r["failed"][0]
    assert all(small for _, _, small in calls)
    assert len(common.CACHE) == 0  # nothing kept between builds


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
    proc = subprocess.run([sys.executable, "-m", "mlx_asv.gpu.prepare_run", "--bench", r"^ops\.Compile\."],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    if common.unavailable_reason("mlx_gpu") is not None:
        assert line.startswith("prepare_run: kernels: none (")


def test_worker_command_line_prints_one_json_line(tmp_path):
    items = [("Sigmoid", ops.Sigmoid.cases[0].label, "mlx_cpu")]
    proc = subprocess.run([sys.executable, "-m", "mlx_asv.gpu.prepare_run", "--worker", json.dumps(items), "--small"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, MLX_ASV_BACKENDS="mlx_cpu"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["done"] == 1


def test_the_regex_is_the_one_the_docs_run():
    with open(os.path.join(ROOT, "docs", "gpu.md"), encoding="utf-8") as f:
        assert f'bash mlx_asv/gpu/gpu_asv.sh h200 "{README_REGEX}"' in f.read()
