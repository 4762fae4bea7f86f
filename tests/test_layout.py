"""The benchmark package's layout: asv benchmark modules and common.py in
benchmarks/, their libraries in benchmarks/lib/, and a one-line summary of
what is timed first in every benchmark class's docstring (asv's pages show
only ``Class.time_op``)."""

import importlib
import inspect
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARK_MODULES = ("ops", "models", "metal_kernels", "fused_ops", "device", "work", "work_fused_ops",
                     "work_metal_kernels")


def test_benchmarks_holds_only_benchmark_modules_and_common():
    entries = {e for e in os.listdir(os.path.join(ROOT, "benchmarks")) if e != "__pycache__"}
    assert entries == {"__init__.py", "common.py", "lib"} | {f"{m}.py" for m in BENCHMARK_MODULES}


def test_libraries_and_their_files_are_in_lib():
    lib = os.path.join(ROOT, "benchmarks", "lib")
    assert {"__init__.py", "linalg_kernels.py", "transformer_mlx.py", "model_inputs.py", "data", "kernels"} <= set(
        os.listdir(lib)
    )
    from benchmarks.lib import linalg_kernels as lk
    from benchmarks.lib import model_inputs as mi

    assert os.path.isfile(mi.CORPUS_PATH) and os.path.dirname(mi.CORPUS_PATH) == os.path.join(lib, "data")
    # the kernel text comes from the files, not from Python strings
    with open(os.path.join(lib, "kernels", lk.BODY_FILES["qr"]), encoding="utf-8") as f:
        assert lk.CUDA_SOURCES["qr"] == lk.CUDA_PROLOGUE + f.read()
    with open(os.path.join(lib, "linalg_kernels.py"), encoding="utf-8") as f:
        assert "MLXASV_SYNC()" not in f.read()  # no kernel body left in the module


def benchmark_classes(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isclass(obj) or inspect.isabstract(obj):
            continue
        if obj.__module__ == module.__name__ and any(a.startswith(("time_", "track_")) for a in dir(obj)):
            yield name, obj


@pytest.mark.parametrize("module_name", BENCHMARK_MODULES)
def test_every_benchmark_class_says_first_what_it_times(module_name):
    module = importlib.import_module(f"benchmarks.{module_name}")
    classes = dict(benchmark_classes(module))
    assert classes
    for name, cls in classes.items():
        doc = cls.__dict__.get("__doc__") or ""
        lines = doc.strip().splitlines()
        assert lines, f"{module_name}.{name} has no docstring"
        first = lines[0]
        assert first.startswith(("Times ", "Records ")) and first.endswith("."), f"{module_name}.{name}: {first!r}"
        assert len(lines) == 1 or not lines[1].strip(), f"{module_name}.{name}: the summary is not one line"
