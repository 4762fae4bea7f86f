"""The work benchmarks of fused_ops.py and metal_kernels.py
(benchmarks/work_fused_ops.py, work_metal_kernels.py): their classes and
cases, the keys that tie a count to its time benchmark and back, torch never
counted, ops.py's work benchmarks kept as their history was recorded, and the
very callable asv records counted under real valgrind."""

import glob
import itertools
import json
import os
import shutil
import sys

import pytest

from benchmarks import fused_ops, metal_kernels, ops, work, work_fused_ops, work_metal_kernels
from benchmarks.lib import count_child, counting
from mlx_asv.decide import instructions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_VALGRIND = bool(shutil.which("valgrind") and shutil.which("cc")
                     and os.path.exists("/usr/include/valgrind/callgrind.h"))
WORK = {"ops": (ops, work), "fused_ops": (fused_ops, work_fused_ops),
        "metal_kernels": (metal_kernels, work_metal_kernels)}


def work_classes(work_module):
    return {n: c for n, c in vars(work_module).items()
            if isinstance(c, type) and issubclass(c, work._Work) and c is not work._Work}


def test_one_work_class_per_family_on_its_cpu_parameters_only():
    fused = work_classes(work_fused_ops)
    assert sorted(fused) == ["AdamWStep", "LayerNorm", "RMSNorm", "SoftmaxVocab"]
    for name, cls in fused.items():
        assert cls.family is getattr(fused_ops, name) and cls.family_name == f"fused_ops.{name}"
        assert cls.params == [list(getattr(fused_ops, name).params[0]), ["mlx_cpu"]]
        assert cls.unit == "instructions" and cls.__module__ == "benchmarks.work_fused_ops"
    metal = work_classes(work_metal_kernels)
    assert sorted(metal) == ["Cholesky", "QRBatched", "QRSingle", "Solve", "SolveTriangular"]
    for name, cls in metal.items():
        assert cls.family is getattr(metal_kernels, name)
        assert cls.params == [list(getattr(metal_kernels, name).params[0]), ["ours_mlx_cpu", "mlx_linalg_cpu"]]
        assert cls.param_names == ["case", "implementation"]
    # the same class name in two modules is two benchmarks, each counting its own family
    assert work.LayerNorm.family is ops.LayerNorm and work_fused_ops.LayerNorm.family is fused_ops.LayerNorm
    assert sum(len(c.params[0]) * len(c.params[1]) for c in [*fused.values(), *metal.values()]) == 20 + 88


def test_torch_is_never_counted():
    """The kernel suites time torch beside MLX; none of it is a work case,
    nor a case tools/instructions.py would count, whatever the regex."""
    assert "torch_cpu" in fused_ops.RMSNorm.params[1] and "torch_cpu" in metal_kernels.Cholesky.params[1]
    for module, (_, work_module) in WORK.items():
        for cls in work_classes(work_module).values():
            assert not any(p.startswith(("torch", "metalcore")) for p in cls.params[1]), cls
            assert set(cls.params[1]) <= set(counting.COUNTED[module])
    counted = instructions.cases(".")
    assert counted and not any("torch" in c[3] or "torch" in c[0] or "metalcore" in c[0] for c in counted)
    assert not instructions.cases(r"'torch_cpu'\)$")
    assert not any("gpu" in p for ps in counting.COUNTED.values() for p in ps)


def test_a_cases_key_is_its_time_benchmark_and_maps_to_its_work_benchmark():
    """Every work case, round trip: the key its setup counts under is the asv
    name of the time benchmark of that case; work_key maps it back to the
    work benchmark and parameters asv records; the child builds it from the
    key's family; tools/instructions.py selects the same cases by regex."""
    seen = set()
    for module, (bench_module, work_module) in WORK.items():
        for name, cls in work_classes(work_module).items():
            timed = counting.timed_method(cls.family)
            assert callable(getattr(cls.family, timed))
            for label, p in itertools.product(*cls.params):
                key = cls.case_key(label, p)
                assert key == f"{module}.{name}.{timed}('{label}', '{p}')"
                assert counting.module_of(key) == module
                assert counting.work_key(key) == f"{work_module.__name__.split('.')[-1]}.{name}.track_instructions('{label}', '{p}')"
                assert count_child.family_class(cls.family_name) is cls.family
                seen.add(key)
    assert "work.ReLU.track_instructions('dim=128x16x1024', 'mlx_cpu')" == counting.work_key(
        "ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu')")  # ops' keys as they were
    chosen = instructions.cases(r"^(fused_ops|metal_kernels)\.")
    assert {c[0] for c in chosen} == {k for k in seen if not k.startswith("ops.")}
    assert all(c[0] == counting.case_key(c[1], c[2], c[3], counting.timed_method(count_child.family_class(c[1])))
               for c in chosen)
    fused = instructions.cases(r"^fused_ops\..*'mlx_cpu'")
    assert len(fused) == 20 and all(c[1].startswith("fused_ops.") for c in fused)
    # without a regex: ops.py's cases, as before
    assert {c[0].split(".")[0] for c in instructions.cases()} == {"ops"}


def test_the_store_keys_a_case_by_its_own_modules_code(tmp_path, monkeypatch):
    """Editing fused_ops.py recounts fused_ops.py's cases, not ops.py's."""
    monkeypatch.setenv(counting.STORE_ENV, str(tmp_path))
    ident = {"mlx_build": "x", "calls": 1, "code": "o1",
             "codes": {"ops": "o1", "fused_ops": "f1", "metal_kernels": "m1"}}
    relu, rms = "ops.ReLU.time_op('a', 'mlx_cpu')", "fused_ops.RMSNorm.time_rms_norm('a', 'mlx_cpu')"
    counting.store(ident, relu, {"counts": [1]})
    counting.store(ident, rms, {"counts": [2]})
    edited = dict(ident, codes=dict(ident["codes"], fused_ops="f2"))
    assert counting.stored(edited, relu)["counts"] == [1]
    assert counting.stored(edited, rms) is None
    # an ops case's identity is the environment's as it was before there were codes
    assert counting.case_identity(ident, relu) == {"mlx_build": "x", "calls": 1, "code": "o1"}
    assert counting.case_identity(ident, rms)["code"] == "f1"
    for module, files in counting.MODULE_CODE.items():
        assert all(os.path.exists(f) for f in files)
        assert os.path.basename(files[0]) == f"{module}.py" and counting.CHILD in files


def test_ops_work_benchmarks_keep_the_version_of_their_recorded_history():
    """asv leaves out results of another benchmark version: every work.*
    result of results-reference/valgrind-x86-64 must carry the version asv's
    discovery gives now, and the new modules' classes none of theirs."""
    pytest.importorskip("asv_runner")
    from mlx_asv.report import count_history

    found = count_history.work_benchmarks()
    recorded = {}
    for path in glob.glob(os.path.join(ROOT, "results-reference", "valgrind-x86-64", "*-valgrind-counts.json")):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        at = data["result_columns"].index("version")
        for name, row in data["results"].items():
            recorded.setdefault(name, set()).add(row[at])
    assert recorded and all(name.startswith("work.") for name in recorded)
    assert {name: versions for name, versions in recorded.items()} == \
        {name: {found[name]["version"]} for name in recorded}
    assert found[next(iter(recorded))]["version"] == work.OPS_VERSION


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind, its headers and a C compiler")
def test_a_fused_and_a_metal_kernels_case_counted_as_asv_records_them(tmp_path, monkeypatch):
    """asv's callable (setup, then track_instructions) under real valgrind on
    one fused_ops case and the two CPU implementations of one metal_kernels
    case: positive, of the size of the work, and equal to a counting process
    launched directly with the key asv's setup counted under."""
    pytest.importorskip("mlx.core")
    monkeypatch.setenv(counting.STORE_ENV, str(tmp_path / "store"))
    rms, label = work_fused_ops.RMSNorm(), "dim=32x4096 fwd+bwd"
    rms.setup(label, "mlx_cpu")
    got_rms = rms.track_instructions(label, "mlx_cpu")
    # forward and backward pass over 32x4096 floats: more than an instruction
    # per 8 of them each way, far less than 1000 per element
    assert 32 * 4096 / 4 < got_rms < 1000 * 32 * 4096, got_rms
    chol = "dim=100x16x16"
    got = {}
    for impl in ("ours_mlx_cpu", "mlx_linalg_cpu"):
        bench = work_metal_kernels.Cholesky()
        bench.setup(chol, impl)
        got[impl] = bench.track_instructions(chol, impl)
        # 100 factorizations of 16x16: at least n^3/3 multiply-adds each
        assert 100 * 16 ** 3 / 3 < got[impl] < 1e9, (impl, got[impl])
    # counted again, another way: one process of its own, launched with the keys setup used
    todo = [(work_fused_ops.RMSNorm.case_key(label, "mlx_cpu"), "fused_ops.RMSNorm", label, "mlx_cpu"),
            (work_metal_kernels.Cholesky.case_key(chol, "mlx_linalg_cpu"), "metal_kernels.Cholesky", chol,
             "mlx_linalg_cpu")]
    proc = counting.launch(sys.executable, todo, str(tmp_path / "direct"), 1, counting.marks_library(str(tmp_path)))
    assert proc.wait(timeout=600) == 0
    direct = counting.read_process(str(tmp_path / "direct"))
    assert set(direct) == {k for k, *_ in todo}
    assert abs(direct[todo[0][0]]["counts"][0] / got_rms - 1) < 0.003
    assert abs(direct[todo[1][0]]["counts"][0] / got["mlx_linalg_cpu"] - 1) < 0.003
    # and each maps back to the benchmark asv records it under
    assert counting.work_key(todo[0][0]) == f"work_fused_ops.RMSNorm.track_instructions('{label}', 'mlx_cpu')"
    assert counting.work_key(todo[1][0]) == f"work_metal_kernels.Cholesky.track_instructions('{chol}', 'mlx_linalg_cpu')"


def test_a_case_its_module_skips_is_skipped_not_counted(tmp_path, monkeypatch):
    """The pure-MLX QR of a single 1024x1024 matrix: metal_kernels.py skips
    it on the CPU (too slow), so its work benchmark is n/a, with the reason."""
    pytest.importorskip("mlx.core")
    if not HAVE_VALGRIND:
        pytest.skip("needs valgrind, its headers and a C compiler")
    monkeypatch.setenv(counting.STORE_ENV, "off")
    with pytest.raises(NotImplementedError, match="pure-MLX QR"):
        work_metal_kernels.QRSingle().setup("dim=1024x1024", "ours_mlx_cpu")


def test_the_regressions_page_takes_every_work_module_for_counts():
    """A step in a count graph is its own verdict (mlx_asv/report/regressions.py)
    for the kernel suites' counts as for ops.py's."""
    from mlx_asv.report import regressions

    for name in ("work.ReLU.track_instructions", "work_fused_ops.RMSNorm.track_instructions",
                 "work_metal_kernels.Cholesky.track_instructions"):
        assert counting.is_work_benchmark(name)
        ok, why = regressions.work_step(name, "A", "B", [1, 2, 10_000_000, 10_500_000], {})
        assert ok and "1.050x instructions" in why
    assert not counting.is_work_benchmark("fused_ops.RMSNorm.time_rms_norm")
    assert not counting.is_work_benchmark("workload.X.time_x") and not counting.is_work_benchmark("work")
