"""benchmarks/common.py's forkserver imports: MLX only where it is not a CUDA build.

A child forked after MLX's CUDA build has initialized CUDA crashed on an H200;
importing torch does not initialize CUDA. So asv's forkserver imports torch
(and NumPy) everywhere, and MLX only on machines without an NVIDIA driver
whose MLX is not a CUDA build (the Linux CPU box).
"""

import os
import subprocess
import sys
from importlib import metadata

import pytest

from benchmarks import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fake_distributions(monkeypatch, installed):
    real = metadata.distribution

    def distribution(name):
        if name in installed:
            return object()
        if name.startswith("mlx-cuda"):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)


def test_cpu_box_server_imports_both(monkeypatch):
    _fake_distributions(monkeypatch, set())
    monkeypatch.setattr(common, "nvidia_driver_present", lambda: False)
    assert common.server_imports() == ("mlx", "torch")


@pytest.mark.parametrize("dist", ["mlx-cuda-13", "mlx-cuda-12", "mlx-cuda"])
def test_mlx_cuda_build_keeps_mlx_out_of_the_server(monkeypatch, dist):
    _fake_distributions(monkeypatch, {dist})
    monkeypatch.setattr(common, "nvidia_driver_present", lambda: False)
    assert common.mlx_cuda_build_installed()
    assert common.server_imports() == ("torch",)


def test_nvidia_driver_keeps_mlx_out_of_the_server(monkeypatch):
    _fake_distributions(monkeypatch, set())
    monkeypatch.setattr(common, "nvidia_driver_present", lambda: True)
    assert common.server_imports() == ("torch",)


def test_run_server_argv_imports_what_server_imports_names():
    # The module, imported as asv's server imports it (sys.argv[1] == 'run_server'),
    # holds exactly the frameworks server_imports() names.
    code = (
        "import sys; sys.argv = ['asv_runner', 'run_server']; "
        "from benchmarks import common; "
        "want = set(common.server_imports()); "
        "have = {n for n, m in (('mlx', 'mlx.core'), ('torch', 'torch')) if m in sys.modules}; "
        "assert have == want, (have, want); print(sorted(have))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cuda_server_defers_mlx_to_the_forked_child():
    # A stand-in for asv's server on a CUDA machine: MLX imports fail in the
    # server (transformer_mlx falls back to None), and a forked child imports
    # MLX and a fresh transformer_mlx.
    code = r"""
import os, sys
_exists = os.path.exists
os.path.exists = lambda p: p == '/proc/driver/nvidia/version' or _exists(p)  # an NVIDIA driver, as far as common knows
sys.argv = ['asv_runner', 'run_server']
from benchmarks import common
os.path.exists = _exists
from benchmarks.lib import transformer_mlx
assert transformer_mlx.mx is None and 'mlx.core' not in sys.modules, 'server imported MLX'
assert common.mlx() is None
import importlib.util
assert importlib.util.find_spec('mlx') is not None, 'the finder hid that MLX is installed'
assert 'mlx' not in sys.modules and 'mlx.core' not in sys.modules, 'a probe imported MLX'
pid = os.fork()
if pid == 0:
    ok = common.mlx() is not None
    from benchmarks.lib import transformer_mlx as t2
    ok = ok and t2.mx is not None and 'mlx.core' in sys.modules
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
print('ok')
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cuda_server_imports_models_with_transformers():
    # transformers asks importlib.util.find_spec("mlx") when it is imported;
    # the server's finder must answer (MLX is installed) without loading MLX,
    # so that models.py (and transformers, once) import in the server.
    pytest.importorskip("transformers")
    code = r"""
import os, sys
_exists = os.path.exists
os.path.exists = lambda p: p == '/proc/driver/nvidia/version' or _exists(p)
sys.argv = ['asv_runner', 'run_server']
from benchmarks import common
os.path.exists = _exists
from benchmarks import models
assert 'transformers' in sys.modules and 'mlx.core' not in sys.modules, sorted(m for m in sys.modules if m.startswith('mlx'))
assert not any(m.startswith('transformers') for m in common._DEFER_MLX.asked_by), common._DEFER_MLX.asked_by
pid = os.fork()
if pid == 0:
    os._exit(0 if common.mlx() is not None else 3)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
print('ok')
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_server_imports_common_without_error():
    # asv's forkserver runs common.py's server block at import (it calls mlx() there, before most of the
    # module is defined): anything mlx() needs must be defined above it
    code = "import sys; sys.argv = ['asv_runner', 'run_server']; import benchmarks.common; print('imported')"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("imported")
