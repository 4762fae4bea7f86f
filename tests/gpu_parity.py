"""What the GPU parity tests share: which backends are GPUs, and what precision
they compute float32 matrix products in. (Imported as ``gpu``; not to be confused
with the GPU-machine harness, ``mlx_asv/gpu/``.)

These tests are skipped on a machine without a GPU (CI); they are run on the
lent NVIDIA machine (docs/gpu.md, "On an NVIDIA GPU").
"""

import os

import numpy as np
import pytest

from benchmarks import common

GPU_BACKENDS = ("mlx_gpu", "mlx_gpu_compile", "torch_cuda", "torch_mps")

# MLX's GPU backends compute float32 matmul and convolution in TF32 (a 10-bit
# mantissa, unit roundoff 2^-11 ~ 4.9e-4) unless MLX_ENABLE_TF32=0: the CUDA
# backend since it exists (0.30.1 has the variable), Metal on recent releases
# where the chip has the units. MLX reads the variable once, at its first
# matmul, so it is set for the whole pytest process. torch leaves TF32 off for
# matmul by default (torch.backends.cuda.matmul.allow_tf32).
TF32_ENV = "MLX_ENABLE_TF32"

# Max-abs error allowed under TF32, relative to the largest |reference|
# value: 20x the unit roundoff. A wrong result (a dropped bias, a wrong axis
# or layout) is off by O(1) of that scale.
TF32_RELATIVE = 1e-2


def mlx_tf32(be_name):
    """True where MLX may compute this backend's float32 matmuls in TF32."""
    return be_name in ("mlx_gpu", "mlx_gpu_compile") and os.environ.get(TF32_ENV, "1") != "0"


def require(be_name):
    """Skip the calling test, with the backend's reason, where it can't run."""
    reason = common.unavailable_reason(be_name)
    if reason is not None:
        pytest.skip(f"{be_name}: {reason}")


def assert_within_tf32(got, want, be_name):
    """``got`` is within TF32_RELATIVE of the largest |want|, max abs."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{be_name}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err <= TF32_RELATIVE, f"{be_name}: max error {err:.2e} of the largest reference value"
