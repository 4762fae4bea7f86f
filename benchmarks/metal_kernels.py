"""Issue 5: our kernels for batches of small matrices, against mx.linalg and
torch.linalg, at the shapes of seed 003 (the metalcore benchmark).

Linear algebra (``QRBatched``, ``QRSingle``, ``Cholesky``, ``Solve``,
``SolveTriangular``) is parametrized as ``[case, implementation]``:

=========================  ================================================
``ours_mlx_gpu``           our GPU kernel (``linalg_kernels``): CUDA through
                           mx.fast.cuda_kernel or Metal through
                           mx.fast.metal_kernel, whichever this MLX runs;
                           skipped without one, and for n > 64
``ours_mlx_gpu_composed``  our pure-MLX composition on the GPU stream
``ours_mlx_cpu``           our pure-MLX composition on the CPU stream
``mlx_linalg_cpu``         mx.linalg on the CPU stream (the only stream
                           MLX's linalg runs on)
``torch_cpu/cuda/mps``     torch.linalg on that device
``metalcore``              metalcore on MPS tensors (macOS only; its API
                           is called as its README shows - UNVERIFIED)
=========================  ================================================

An implementation that can't run here (no such device, kernel API or
package; an MLX release older than the function's ``MLX_LINALG_SINCE``)
raises NotImplementedError in setup (asv: skipped); any other error, from
MLX, torch or metalcore, propagates and fails the case.

``time_*`` times one call whose result is evaluated (MLX) or synchronized
(torch GPU) inside the timed callable (Backend.timed).
``track_*`` record the accuracy of the same call, per implementation and
shape, as history (unit "relative error", max over the batch, in float64):
‖A−QR‖_F/‖A‖_F, ‖QᵀQ−I‖₂ (spectral norm, see
qr_orthogonality_error), ‖LLᵀ−A‖_F/‖A‖_F, ‖Ax−b‖_F/‖b‖_F.

Inputs are seeded and well conditioned: QR takes standard normal matrices;
Cholesky SPD = B·Bᵀ + n·I; solve a row-permuted G/√n + 3·I (condition
number below ~5, and the permutation makes partial pivoting work); the
triangular solve the Cholesky factor of B·Bᵀ + n·I, one right-hand side
(b is (batch, n, 1) everywhere).

MLX's fused ops (RMSNorm, LayerNorm, vocabulary softmax, AdamW step), also
seed 003, are in ``fused_ops.py``.

Cost of the default run on a 2-core CPU: the asv attributes below keep each
case to about 3-10 samples (``repeat``) of one call (``number``); the pure-MLX
QR of a single 1024x1024, 2000x500 or 4000x1000 matrix takes seconds per
call on such a CPU, so ``ours_mlx_cpu`` skips
those three with a reason (``PURE_MLX_CPU_QR_BUDGET``). No seed shape is
shrunk.
"""

from __future__ import annotations

import abc
import importlib

import numpy as np

from .lib import linalg_kernels as lk
from .common import (
    Case,
    CaseTable,
    KernelTiming,
    backend,
    cached,
    check_mlx_release,
    mlx,
    normal,
    profile_event,
    require_mlx,
    rng,
    shape_label,
    torch,
)

IMPLEMENTATIONS = (
    "ours_mlx_gpu",
    "ours_mlx_gpu_composed",
    "ours_mlx_cpu",
    "mlx_linalg_cpu",
    "torch_cpu",
    "torch_cuda",
    "torch_mps",
    "metalcore",
)

# m * n * min(m, n) above which the pure-MLX QR on the CPU is skipped
# (512**3: 512x512 takes ~0.4 s here, 1024x1024 2.2 s, 4000x1000 ~10 s).
PURE_MLX_CPU_QR_BUDGET = 512**3

# First MLX releases with each mx.linalg function (from MLX's git tags).
MLX_LINALG_SINCE = {"qr": "0.1.0", "cholesky": "0.14.0", "solve": "0.23.0", "solve_triangular": "0.23.0"}


def _to_numpy(value):
    """MLX array / torch tensor (or a tuple of them) as float64 NumPy."""
    if isinstance(value, (tuple, list)):
        return [_to_numpy(v) for v in value]
    mx = mlx()
    if mx is not None and isinstance(value, mx.array):
        return np.array(value.astype(mx.float32)).astype(np.float64)
    return value.detach().float().cpu().numpy().astype(np.float64)


def _frob(x):
    return np.sqrt(np.sum(x * x, axis=(-2, -1)))


def _batched(x):
    return x if x.ndim >= 3 else x[None]


def qr_reconstruction_error(a, q, r):
    a, q, r = _batched(a), _batched(q), _batched(r)
    return float(np.max(_frob(a - q @ r) / np.maximum(_frob(a), 1e-300)))


def qr_orthogonality_error(q):
    """max over the batch of the spectral norm ‖QᵀQ − I‖₂.

    The 2-norm, not the Frobenius norm: the latter grows with the size of Q
    (for a 256x256 float32 QR, MLX's own mx.linalg.qr gives 1.1e-5 in
    Frobenius norm and 1.9e-6 in 2-norm), so the 2-norm keeps one scale
    (<= 1e-5 for well-conditioned float32 inputs) from 8x8 to 4000x1000.
    """
    q = _batched(q)
    k = q.shape[-1]
    return float(np.max(np.linalg.norm(np.swapaxes(q, -1, -2) @ q - np.eye(k), ord=2, axis=(-2, -1))))


def cholesky_reconstruction_error(a, l):
    a, l = _batched(a), _batched(l)
    return float(np.max(_frob(l @ np.swapaxes(l, -1, -2) - a) / np.maximum(_frob(a), 1e-300)))


def solve_residual(a, x, b):
    a, x, b = _batched(a), _batched(x), _batched(b)
    return float(np.max(_frob(a @ x - b) / np.maximum(_frob(b), 1e-300)))


# --------------------------------------------------------------------------
# Seeded inputs
# --------------------------------------------------------------------------


def spd_matrices(key, batch_shape, n):
    """B Bᵀ + n I (float64 math, float32 result): eigenvalues in ~[n, 5n]."""
    g = normal(key + ("B",), tuple(batch_shape) + (n, n), dtype=np.float64)
    return (g @ np.swapaxes(g, -1, -2) + n * np.eye(n)).astype(np.float32)


def general_matrices(key, batch_shape, n):
    """Row-permuted G/√n + 3I: condition number < ~5, pivoting exercised."""
    g = normal(key + ("G",), tuple(batch_shape) + (n, n), dtype=np.float64)
    a = g / np.sqrt(n) + 3.0 * np.eye(n)
    perm = rng(key, "perm", n).permutation(n)
    return a[..., perm, :].astype(np.float32)


def lower_triangular_matrices(key, batch_shape, n):
    """The Cholesky factor of B Bᵀ + n I: well conditioned, lower triangular."""
    s = spd_matrices(key, batch_shape, n).astype(np.float64)
    return np.linalg.cholesky(s).astype(np.float32)


# --------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------


def _metalcore():
    try:
        return importlib.import_module("metalcore")
    except ImportError as e:  # macOS-only package
        raise NotImplementedError(f"metalcore does not import here ({e})")


def _metalcore_fn(op):
    mc = _metalcore()
    if op == "qr":
        return lambda a: mc.qr_batched(a) if a.dim() == 3 else mc.qr(a)
    if op == "cholesky":
        return mc.cholesky
    if op == "solve":
        return mc.solve
    if op == "solve_triangular":
        # metalcore's README names trsm(A, B) without its keywords: UNVERIFIED.
        return lambda a, b: mc.trsm(a, b)
    raise ValueError(op)


def _mlx_linalg_fn(op):
    mx = mlx()
    # The version gate is the only skip: a release at or past MLX_LINALG_SINCE
    # without the function is an error (the table would be wrong), not a skip.
    require_mlx(MLX_LINALG_SINCE[op], f"mx.linalg.{op}")
    fn = getattr(mx.linalg, op)
    if op == "solve_triangular":
        return lambda a, b: fn(a, b, upper=False, stream=mx.cpu)
    return lambda *args: fn(*args, stream=mx.cpu)


def _torch_fn(op):
    linalg = torch().linalg
    if op == "solve_triangular":
        return lambda a, b: linalg.solve_triangular(a, b, upper=False)
    return getattr(linalg, op)


def _ours_fn(op, form):
    fn = lk.FUNCTIONS[op]
    if op == "solve_triangular":
        return lambda a, b: fn(a, b, upper=False, impl=form)
    return lambda *args: fn(*args, impl=form)


def implementation(impl, op, dims):
    """(Backend, function of the framework arrays) for ``impl``, or NotImplementedError.

    ``dims`` are the matrix dimensions (m, n) of one case.
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {impl!r}; choose from {IMPLEMENTATIONS}")
    if impl == "ours_mlx_gpu":
        be = backend("mlx_gpu")
        kind = lk.gpu_kernel_kind()
        if kind is None:
            reasons = "; ".join(f"{k}: {lk.kernel_api(k)}" for k in ("cuda", "metal"))
            raise NotImplementedError(f"no GPU kernel API here ({reasons})")
        if not lk.fits_kernel(*dims):
            raise NotImplementedError(f"our kernels take matrices up to {lk.KERNEL_MAX_DIM}; this is {dims}")
        return be, _ours_fn(op, kind)
    if impl == "ours_mlx_gpu_composed":
        return backend("mlx_gpu"), _ours_fn(op, "mlx")
    if impl == "ours_mlx_cpu":
        m, n = dims[0], dims[-1]
        if op == "qr" and m * n * min(m, n) > PURE_MLX_CPU_QR_BUDGET:
            raise NotImplementedError(
                f"the pure-MLX QR of a single {m}x{n} matrix takes seconds per call on a CPU "
                f"(2.2 s for 1024x1024 on a 2-core box); skipped to keep the default run affordable"
            )
        return backend("mlx_cpu"), _ours_fn(op, "mlx")
    if impl == "mlx_linalg_cpu":
        be = backend("mlx_cpu")
        return be, _mlx_linalg_fn(op)
    if impl == "metalcore":
        be = backend("torch_mps")
        return be, _metalcore_fn(op)
    be = backend(impl)  # torch_cpu / torch_cuda / torch_mps
    return be, _torch_fn(op)


class Prepared:
    """One case on one implementation: the timed callable and its inputs."""

    def __init__(self, impl, be, fn, inputs):
        self.impl = impl
        self.backend = be
        self.fn = fn  # zero-argument, evaluates / synchronizes its result
        self.inputs = inputs  # the NumPy inputs

    def result(self):
        """The result of one call, as float64 NumPy (a list for QR)."""
        return _to_numpy(self.fn())


class LinalgTable(KernelTiming, CaseTable):
    """A table of linalg cases timed on every implementation."""

    backends = IMPLEMENTATIONS
    param_names = ["case", "implementation"]
    unit = "relative error"  # of the track_ benchmarks (time_ is in seconds)
    op = None

    @abc.abstractmethod
    def inputs(self, args, key):
        """The NumPy inputs of a case."""

    def dims(self, args):
        shape = args[0]
        return tuple(shape[-2:])

    def build(self, backend_, args, key):  # CaseTable's abstract hook (unused)
        raise NotImplementedError

    @classmethod
    def prepared(cls, label, impl, small=False):
        """The Prepared case (cached per process, like CaseTable.callable)."""
        profile_event("setup", bench=cls.__name__, case=label, backend=impl)
        check_mlx_release()  # under asv: the installed MLX is the results' release
        c = cls.case(label)
        args = c.small if small else c.args
        self = cls()
        be, fn = implementation(impl, cls.op, self.dims(args))
        key = (cls.__module__, cls.__name__, label, small)

        def build():
            profile_event("build")
            data = self.inputs(args, key)
            profile_event("inputs")
            arrays = be.arrays(data)
            profile_event("on_device")
            call = be.timed(fn, *arrays)
            # Warm up (JIT compiles, lazy inits) outside the timed region. Any
            # error (from MLX, torch or metalcore) propagates: asv records a
            # failure. What a release lacks was skipped above, by a version gate.
            call()
            profile_event("built")
            return Prepared(impl, be, call, data)

        prep = cached(key + (impl,), build)
        be.activate()
        return prep

    @classmethod
    def callable(cls, label, impl, small=False):
        return cls.prepared(label, impl, small).fn

    def setup(self, case, impl):
        self.prep = self.prepared(case, impl)
        self.fn = self.prep.fn


def _qr_case(shape, small):
    return Case(shape_label(shape), (shape,), (small,))


class _QRBase(LinalgTable):
    op = "qr"

    def inputs(self, args, key):
        return [normal(key, args[0])]

    def time_qr(self, case, impl):
        self.fn()

    def track_qr_reconstruction(self, case, impl):
        q, r = self.prep.result()
        return qr_reconstruction_error(self.prep.inputs[0].astype(np.float64), q, r)

    def track_qr_orthogonality(self, case, impl):
        q, _ = self.prep.result()
        return qr_orthogonality_error(q)


class QRBatched(_QRBase):
    """Times a reduced QR of a batch of small matrices; tracks its accuracy.

    Seed 003 "QR Batched": batches of 8x8 to 48x48, tall and wide."""

    cases = tuple(
        _qr_case(shape, small)
        for shape, small in [
            ((50, 8, 8), (2, 8, 8)),
            ((100, 8, 8), (3, 8, 8)),
            ((500, 8, 8), (4, 8, 8)),
            ((50, 16, 16), (2, 16, 16)),
            ((100, 16, 16), (3, 16, 16)),
            ((200, 16, 16), (4, 16, 16)),
            ((500, 16, 16), (5, 16, 16)),
            ((1000, 16, 16), (6, 16, 16)),
            ((50, 32, 32), (2, 12, 12)),
            ((100, 32, 32), (3, 12, 12)),
            ((200, 32, 32), (4, 12, 12)),
            ((500, 32, 32), (5, 12, 12)),
            ((50, 48, 48), (2, 10, 10)),
            ((100, 48, 48), (3, 10, 10)),
            ((100, 64, 32), (3, 10, 5)),
            ((100, 32, 64), (3, 5, 10)),
            ((200, 64, 32), (4, 10, 5)),
        ]
    )


class QRSingle(_QRBase):
    """Times a reduced QR of one matrix; tracks its accuracy.

    Seed 003 "QR Single Matrix": 16x16 to 1024x1024 and tall matrices."""

    cases = tuple(
        _qr_case(shape, small)
        for shape, small in [
            ((16, 16), (6, 6)),
            ((32, 32), (7, 7)),
            ((64, 64), (8, 8)),
            ((128, 128), (9, 9)),
            ((256, 256), (10, 10)),
            ((512, 512), (11, 11)),
            ((1024, 1024), (12, 12)),
            ((256, 64), (12, 3)),
            ((256, 128), (12, 6)),
            ((512, 128), (16, 4)),
            ((512, 256), (16, 8)),
            ((1000, 200), (15, 3)),
            ((2000, 500), (16, 4)),
            ((4000, 1000), (16, 4)),
        ]
    )


class Cholesky(LinalgTable):
    """Times a batched Cholesky factorization; tracks its reconstruction error.

    Seed 003 "Cholesky": batches of SPD 16x16 to 64x64."""

    op = "cholesky"
    cases = tuple(
        Case(shape_label(shape), (shape,), (small,))
        for shape, small in [
            ((100, 16, 16), (3, 16, 16)),
            ((500, 16, 16), (4, 5, 5)),
            ((100, 32, 32), (3, 9, 9)),
            ((200, 48, 48), (2, 11, 11)),
            ((100, 64, 64), (2, 13, 13)),
        ]
    )

    def inputs(self, args, key):
        shape = args[0]
        return [spd_matrices(key, shape[:-2], shape[-1])]

    def time_cholesky(self, case, impl):
        self.fn()

    def track_cholesky_reconstruction(self, case, impl):
        l = self.prep.result()
        return cholesky_reconstruction_error(self.prep.inputs[0].astype(np.float64), l)


class _SolveBase(LinalgTable):
    cases = tuple(
        Case(shape_label(shape), (shape,), (small,))
        for shape, small in [
            ((100, 16, 16), (3, 16, 16)),
            ((500, 16, 16), (4, 5, 5)),
            ((100, 32, 32), (3, 9, 9)),
            ((200, 48, 48), (2, 11, 11)),
        ]
    )

    def matrices(self, key, batch_shape, n):
        raise NotImplementedError

    def inputs(self, args, key):
        shape = args[0]
        a = self.matrices(key, shape[:-2], shape[-1])
        b = normal(key + ("b",), tuple(shape[:-1]) + (1,))
        return [a, b]

    def residual(self):
        x = self.prep.result()
        a, b = (v.astype(np.float64) for v in self.prep.inputs)
        return solve_residual(a, x, b)


class Solve(_SolveBase):
    """Times a batched general linear solve (LU, partial pivoting); tracks its residual.

    Seed 003 "Linear Solve" shapes; general A, LU with partial pivoting."""

    op = "solve"

    def matrices(self, key, batch_shape, n):
        return general_matrices(key, batch_shape, n)

    def time_solve(self, case, impl):
        self.fn()

    def track_solve_residual(self, case, impl):
        return self.residual()


class SolveTriangular(_SolveBase):
    """Times a batched lower-triangular solve; tracks its residual.

    Lower triangular solves at the seed's solve shapes (no seed table)."""

    op = "solve_triangular"

    def matrices(self, key, batch_shape, n):
        return lower_triangular_matrices(key, batch_shape, n)

    def time_solve_triangular(self, case, impl):
        self.fn()

    def track_solve_triangular_residual(self, case, impl):
        return self.residual()


LINALG_CLASSES = (QRBatched, QRSingle, Cholesky, Solve, SolveTriangular)
