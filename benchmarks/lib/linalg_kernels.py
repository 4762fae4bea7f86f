"""Our own kernels for batches of small matrices (n <= 64, float32).

Four operations, each in three forms that share one algorithm:

========================  ==============================================
``qr(a)``                 Householder QR, reduced: Q (m x k), R (k x n),
                          k = min(m, n); LAPACK's sign convention
                          (R[j, j] = -sign(a_jj) * norm, tau = 0 for a
                          column whose part below the diagonal is zero).
``cholesky(a)``           lower L with L L^T = A; reads the lower
                          triangle only. Not positive definite: NaN or
                          inf, no error (MLX's own CPU routine returns
                          garbage there).
``solve(a, b)``           general A x = b by LU with partial pivoting
                          (largest |a_ij| of the rows not yet pivoted;
                          ties: the lowest row, as LAPACK's isamax).
                          Singular A: inf/NaN, no error.
``solve_triangular``      forward / back substitution with a lower or
                          upper triangular A (the other triangle is
                          never read).
========================  ==============================================

Why LU with partial pivoting for ``solve``: it is what ``mx.linalg.solve``
and ``torch.linalg.solve`` compute (LAPACK getrf/getrs), it works for any
non-singular A, and for an SPD A the Cholesky kernel is there anyway.

The three forms
---------------
The kernel source text is in ``kernels/`` (read once at import): one body
per operation shared by both dialects (``qr.inc``, ``cholesky.inc``,
``lu_solve.inc``, ``trsv.inc``), the dialect headers ``dialect.cuh`` and
``dialect.metal``, the helpers of both (``common.h``), and the 2-line
prologues ``prologue.cu`` / ``prologue.metal``.

* ``CUDA_SOURCES[op]`` for ``mx.fast.cuda_kernel`` (MLX >= 0.29, NVIDIA).
  Cholesky and the triangular solve: one row per thread, held in registers
  (the column loops are unrolled over the template constant N), one group
  of ``LANES = pow2(n)`` threads per matrix and ``MPB`` matrices per block
  (the largest power of two dividing the batch, <= 128 threads: the kernels
  take no batch size); a column / x_j reaches the other rows by a shuffle,
  with no barrier at all for n <= 32; for 33 <= n <= 64 a 64-thread block
  per matrix and one ``__syncthreads`` per column through a double-buffered
  shared value. QR and the LU solve: one thread block per matrix, the matrix
  in shared memory, the columns processed in a loop with one
  ``__syncthreads`` per column; reductions
  (Householder norms and dot products, the pivot search) are warp shuffles
  within groups of ``LANES`` threads (one group per column / right-hand
  side). The block size is a multiple of 32, and every shuffle is executed
  by all 32 lanes of a warp (groups without work run with zeros), so the
  full-mask shuffles are legal.
* ``METAL_SOURCES[op]`` for ``mx.fast.metal_kernel`` (MLX >= 0.18, Apple):
  UNVERIFIED - no Mac was available to compile or run it. It is the *same
  body text* as the CUDA source, line for line; only a 2-line prologue
  (thread and block ids) and the dialect header (``MLXASV_SHARED``,
  ``MLXASV_SYNC``, the shuffle and math helpers) differ; ``MLXASV_UNROLL``
  is empty there (whether Metal keeps the row arrays in registers is
  UNVERIFIED; the result does not depend on it). It assumes a SIMD
  width of 32 (true on Apple GPUs so far) and <= 32 KB of threadgroup memory
  (the largest, 64x64 QR, uses ~17 KB).
* the pure-MLX composition (``qr_mlx`` ...): ordinary MLX ops, batched over
  the leading dimensions, a Python loop over the columns building the graph.
  It runs on any device and MLX release and is the reference the tests check
  against NumPy. MLX's own ``mx.linalg`` runs on the CPU stream only.

``qr``/``cholesky``/``solve``/``solve_triangular`` dispatch: the CUDA kernel
where ``mlx_gpu_kind() == "cuda"`` and ``mx.fast.cuda_kernel`` exists, the
Metal kernel where it is ``"metal"`` and ``mx.fast.metal_kernel`` exists, and
the pure-MLX form otherwise (also for matrices larger than 64).

How MLX wraps a source (read from MLX 0.29-0.32's
``mlx/backend/cuda/custom_kernel.cpp`` and ``mlx/backend/common/metal_kernel.cpp``):
the source is the *body* of a generated function. CUDA: MLX writes its own
device header (``mlx/backend/cuda/device/utils.cuh``, cooperative_groups),
then our ``header``, then inside ``namespace mlx::core::cu`` a
``__global__ void custom_kernel_<name>(const float* A, ..., float* Q, ...)``
whose body starts with ``constexpr int M = 16;`` for each int template
argument, then our source; compiled by NVRTC with
``--device-as-default-execution-space`` for the device's sm_XY(a). The launch
``grid`` is in *threads* (MLX divides by ``threadgroup``), as for Metal.
Metal: ``header``, then ``template <int M, ...> [[kernel]] void
custom_kernel_<name>(const device float* A [[buffer(0)]], ..., device float* Q
[[buffer(k)]], uint3 thread_position_in_threadgroup [[...]], ...)``; the
attributes are added only if their name occurs in the *source* (not the
header), so the Metal prologue names them. Inputs of fewer than 8 elements
are passed in the ``constant`` address space, so the body indexes the
arguments directly and never stores them in typed pointers.
"""

from __future__ import annotations

import functools
import os
import re

from ..common import mlx, mlx_gpu_kind, mlx_version, parse_version

# The kernels hold a whole matrix (and, for QR, its reflectors) in shared
# memory and give each lane at most two rows: n <= 64.
KERNEL_MAX_DIM = 64
OPS = ("qr", "cholesky", "solve", "solve_triangular")
KERNEL_NAMES = {
    "qr": "mlxasv_qr",
    "cholesky": "mlxasv_cholesky",
    "solve": "mlxasv_lu_solve",
    "solve_triangular": "mlxasv_trsv",
}
INPUT_NAMES = {
    "qr": ["A"],
    "cholesky": ["A"],
    "solve": ["A", "B"],
    "solve_triangular": ["A", "B"],
}
OUTPUT_NAMES = {
    "qr": ["Q", "R"],
    "cholesky": ["L"],
    "solve": ["X"],
    "solve_triangular": ["X"],
}
# First releases with the list-style kernel APIs used here.
CUDA_KERNEL_MIN_MLX = "0.29.0"
METAL_KERNEL_MIN_MLX = "0.18.0"

# ---------------------------------------------------------------------------
# Kernel source text: files in kernels/, read once at import
# ---------------------------------------------------------------------------

KERNEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")


def _read_kernel_file(name):
    with open(os.path.join(KERNEL_DIR, name), encoding="utf-8") as f:
        return f.read()


# Dialect headers (kernels/dialect.cuh, kernels/dialect.metal): the only place
# besides the 2-line prologue where the CUDA and the Metal forms differ. Helper
# names carry the mlxasv_ prefix so they cannot collide with MLX's own device
# helpers (which live in namespaces that unqualified lookup searches first).
CUDA_DIALECT = _read_kernel_file("dialect.cuh")
METAL_DIALECT = _read_kernel_file("dialect.metal")
# Helpers written once for both dialects.
COMMON_HEADER = _read_kernel_file("common.h")
# Thread and block ids.
CUDA_PROLOGUE = _read_kernel_file("prologue.cu")
METAL_PROLOGUE = _read_kernel_file("prologue.metal")

# The bodies (kernels/*.inc), one text for both dialects. Template constants,
# set by the launch configuration (see *_config below):
#   M, N      matrix rows and columns (N x N for the square ops)
#   K         min(M, N) for QR; NRHS: right-hand sides (columns of B)
#   LANES     lanes per group (power of two <= 32): a group owns a column of
#             the matrix (QR) or a right-hand side (the substitutions)
#   RPL       rows per lane, ceil(rows / LANES) (at most 2)
#   NTHREADS  threads per block, a multiple of 32
#   TX        threads along a row in the elementwise updates (power of 2)
# Markers "// @loop" and "// @step" tag the structure the mirror test checks.
BODY_FILES = {
    "qr": "qr.inc",
    "cholesky": "cholesky.inc",
    "solve": "lu_solve.inc",
    "solve_triangular": "trsv.inc",
}
BODIES = {op: _read_kernel_file(name) for op, name in BODY_FILES.items()}
QR_BODY = BODIES["qr"]
CHOLESKY_BODY = BODIES["cholesky"]
LU_SOLVE_BODY = BODIES["solve"]
TRSV_BODY = BODIES["solve_triangular"]

CUDA_HEADER = CUDA_DIALECT + COMMON_HEADER
METAL_HEADER = METAL_DIALECT + COMMON_HEADER
CUDA_SOURCES = {op: CUDA_PROLOGUE + body for op, body in BODIES.items()}
METAL_SOURCES = {op: METAL_PROLOGUE + body for op, body in BODIES.items()}


def structure_markers(source):
    """The ``// @loop`` / ``// @step`` markers of a source, in order."""
    return re.findall(r"//\s*@(loop|step)\b[^\n]*", source)


# ---------------------------------------------------------------------------
# Launch configurations (pure Python: testable without a GPU)
# ---------------------------------------------------------------------------


def _pow2(x):
    p = 1
    while p < x:
        p *= 2
    return p


def _round32(x):
    return max(32, -(-x // 32) * 32)


def _lanes(rows):
    lanes = min(32, _pow2(rows))
    return lanes, -(-rows // lanes)


def qr_config(m, n):
    """Template arguments and threads per block of the QR kernel."""
    lanes, rpl = _lanes(m)
    nthreads = min(512, _round32(lanes * n))  # about one group per column
    return {"M": m, "N": n, "K": min(m, n), "LANES": lanes, "RPL": rpl, "NTHREADS": nthreads}


def _group_lanes(n):
    """Threads per matrix of the row-per-thread kernels: pow2(n), at most 64."""
    return min(64, _pow2(n))


def _matrices_per_block(batch, lanes, target=128):
    """Matrices per block: the largest power of two that divides ``batch``
    with ``lanes * mpb <= target`` (one for 64 lanes). The kernels take no
    batch size, so a block must never run past the last matrix."""
    if lanes > 32:
        return 1
    mpb = 1
    while lanes * mpb * 2 <= target and batch % (mpb * 2) == 0:
        mpb *= 2
    return mpb


@functools.lru_cache(maxsize=None)
def cholesky_config(n, batch=1):
    """Template arguments and threads per block of the Cholesky kernel."""
    lanes = _group_lanes(n)
    mpb = _matrices_per_block(batch, lanes)
    return {"N": n, "LANES": lanes, "MPB": mpb, "NTHREADS": max(32, lanes * mpb)}


def solve_config(n, nrhs):
    tx = min(32, _pow2(n))
    lanes, rpl = _lanes(n)
    nthreads = _round32(tx * min(_pow2(n), 512 // tx))
    return {"N": n, "NRHS": nrhs, "TX": tx, "LANES": lanes, "RPL": rpl, "NTHREADS": nthreads}


@functools.lru_cache(maxsize=None)
def trsv_config(n, nrhs, upper, batch=1):
    """Template arguments and threads per block of the triangular solve."""
    lanes = _group_lanes(n)
    mpb = _matrices_per_block(batch, lanes)
    return {"N": n, "NRHS": nrhs, "LANES": lanes, "MPB": mpb, "NTHREADS": max(32, lanes * mpb), "UPPER": bool(upper)}


def num_blocks(cfg, batch):
    """Thread blocks of a launch over ``batch`` matrices."""
    return batch // cfg.get("MPB", 1)


def shared_memory_bytes(op, cfg):
    """Static shared (threadgroup) memory one block of ``op`` declares."""
    if op == "qr":
        return 4 * (cfg["M"] * (cfg["N"] + 1) + 2 * cfg["K"])
    if op == "cholesky":
        return 4 * 2 * 64
    if op == "solve_triangular":
        return 4 * 2
    n = cfg["N"]
    return 4 * (n * (n + 1) + 2 * n)


# ---------------------------------------------------------------------------
# Kernel objects and availability
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def kernel_api(kind):
    """Why ``kind`` ('cuda'/'metal') kernels can't run here, or None if they can.

    Cached: it is asked on every call, inside timed regions.
    """
    mx = mlx()
    if mx is None:
        return "MLX is not installed"
    gpu = mlx_gpu_kind()
    if gpu != kind:
        return f"this MLX runs no {kind} GPU here (GPU backend: {gpu})"
    api = "cuda_kernel" if kind == "cuda" else "metal_kernel"
    need = CUDA_KERNEL_MIN_MLX if kind == "cuda" else METAL_KERNEL_MIN_MLX
    fast = getattr(mx, "fast", None)
    if fast is None or not hasattr(fast, api) or mlx_version() < parse_version(need):
        return f"mx.fast.{api} (list API) needs MLX >= {need}; this is {mx.__version__}"
    return None


def gpu_kernel_kind():
    """'cuda' or 'metal' if our GPU kernels can run here, else None."""
    for kind in ("cuda", "metal"):
        if kernel_api(kind) is None:
            return kind
    return None


def fits_kernel(*dims):
    return all(1 <= d <= KERNEL_MAX_DIM for d in dims)


@functools.lru_cache(maxsize=None)
def _kernel(kind, op):
    mx = mlx()
    common = dict(
        name=KERNEL_NAMES[op],
        input_names=INPUT_NAMES[op],
        output_names=OUTPUT_NAMES[op],
        ensure_row_contiguous=True,
    )
    if kind == "cuda":
        return mx.fast.cuda_kernel(source=CUDA_SOURCES[op], header=CUDA_HEADER, **common)
    if kind == "metal":
        return mx.fast.metal_kernel(source=METAL_SOURCES[op], header=METAL_HEADER, **common)
    raise ValueError(f"unknown kernel kind {kind!r}")


def _launch(kind, op, inputs, cfg, batch, output_shapes, verbose=False):
    mx = mlx()
    nthreads = cfg["NTHREADS"]
    template = [(name, value) for name, value in cfg.items()]
    return _kernel(kind, op)(
        inputs=inputs,
        template=template,
        grid=(num_blocks(cfg, batch) * nthreads, 1, 1),
        threadgroup=(nthreads, 1, 1),
        output_shapes=output_shapes,
        output_dtypes=[mx.float32] * len(output_shapes),
        verbose=verbose,
        stream=mx.gpu,
    )


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------


def _as_batch(a, trailing):
    """a (..., *trailing dims) as float32 (B, *trailing) and the batch shape."""
    mx = mlx()
    a = mx.array(a) if not isinstance(a, mx.array) else a
    if a.dtype != mx.float32:
        a = a.astype(mx.float32)
    if a.ndim < trailing:
        raise ValueError(f"expected at least {trailing} dimensions, got shape {a.shape}")
    lead = tuple(a.shape[: a.ndim - trailing])
    size = 1
    for d in lead:
        size *= d
    return a.reshape((size,) + tuple(a.shape[a.ndim - trailing :])), lead


def _rhs(a, b):
    """b as (B, n, k) matching a (B, n, n); whether b was a batch of vectors.

    ``b`` is a batch of vectors when it has one dimension less than ``a``
    (as in torch.linalg.solve), else a batch of n x k matrices.
    """
    mx = mlx()
    b = mx.array(b) if not isinstance(b, mx.array) else b
    vector = b.ndim == a.ndim - 1
    if vector:
        b = b[..., None]
    bb, _ = _as_batch(b, 2)
    return bb, vector


# ---------------------------------------------------------------------------
# Pure-MLX forms: any device, any release; batched (B, ...) float32 arrays
# ---------------------------------------------------------------------------


def qr_mlx(a):
    """Householder QR of a (B, m, n) batch: (Q (B, m, k), R (B, k, n))."""
    mx = mlx()
    bsz, m, n = a.shape
    k = min(m, n)
    work = a  # the trailing block still to reduce: (B, m - j, n - j)
    rows, vs, taus = [], [], []
    for j in range(k):
        x = work[:, :, 0]
        x0 = x[:, 0]
        if m - j > 1:
            xt = x[:, 1:]
            tail = mx.sum(xt * xt, axis=1)
        else:
            xt = None
            tail = mx.zeros_like(x0)
        has = tail > 0
        norm = mx.sqrt(x0 * x0 + tail)
        beta = mx.where(has, mx.where(x0 >= 0, -norm, norm), x0)
        safe_beta = mx.where(has, beta, 1.0)
        tau = mx.where(has, (beta - x0) / safe_beta, 0.0)
        scale = mx.where(has, 1.0 / mx.where(has, x0 - beta, 1.0), 0.0)
        one = mx.ones((bsz, 1), dtype=a.dtype)
        v = one if xt is None else mx.concatenate([one, xt * scale[:, None]], axis=1)
        parts = [beta[:, None]]
        if j:
            parts.insert(0, mx.zeros((bsz, j), dtype=a.dtype))
        if j + 1 < n:
            rest = work[:, :, 1:]
            w = mx.sum(v[:, :, None] * rest, axis=1, keepdims=True)
            rest = rest - (tau[:, None, None] * v[:, :, None]) * w
            parts.append(rest[:, 0, :])
            work = rest[:, 1:, :]
        rows.append(mx.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])
        vs.append(v)
        taus.append(tau)
    r = mx.stack(rows, axis=1)
    # Q = H_0 ... H_(k-1) I[:, :k], accumulated backwards on shrinking blocks.
    qb = None
    for j in reversed(range(k)):
        v, tau = vs[j], taus[j]
        rows_j, cols_j = m - j, k - j
        e0 = mx.ones((bsz, 1, 1), dtype=a.dtype)
        if qb is None:
            block = e0 if rows_j == 1 else mx.pad(e0, [(0, 0), (0, rows_j - 1), (0, 0)])
        else:
            block = mx.pad(qb, [(0, 0), (1, 0), (1, 0)])
            block = block + mx.pad(e0, [(0, 0), (0, rows_j - 1), (0, cols_j - 1)])
        w = mx.sum(v[:, :, None] * block, axis=1, keepdims=True)
        qb = block - (tau[:, None, None] * v[:, :, None]) * w
    return qb, r


def cholesky_mlx(a):
    """Lower Cholesky factor of a (B, n, n) SPD batch (lower triangle read)."""
    mx = mlx()
    n = a.shape[-1]
    s = a
    cols = []
    for j in range(n):
        d = mx.sqrt(s[:, 0, 0])
        if j + 1 < n:
            t = s[:, 1:, 0] / d[:, None]
            col = mx.concatenate([d[:, None], t], axis=1)
            s = s[:, 1:, 1:] - t[:, :, None] * t[:, None, :]
        else:
            col = d[:, None]
        cols.append(mx.pad(col, [(0, 0), (j, 0)]) if j else col)
    return mx.stack(cols, axis=2)


def solve_triangular_mlx(a, b, upper=False):
    """x with a x = b; a (B, n, n) triangular, b (B, n, k)."""
    mx = mlx()
    n = a.shape[-1]
    y = b  # the rows still to solve
    xs = [None] * n
    order = range(n - 1, -1, -1) if upper else range(n)
    for j in order:
        if upper:
            xj = y[:, j, :] / a[:, j, j][:, None]
            if j:
                y = y[:, :j, :] - a[:, :j, j][:, :, None] * xj[:, None, :]
        else:
            xj = y[:, 0, :] / a[:, j, j][:, None]
            if j + 1 < n:
                y = y[:, 1:, :] - a[:, j + 1 :, j][:, :, None] * xj[:, None, :]
        xs[j] = xj
    return mx.stack(xs, axis=1)


def solve_mlx(a, b):
    """x with a x = b by LU with partial pivoting; a (B, n, n), b (B, n, k)."""
    mx = mlx()
    bsz, n, _ = a.shape
    s, y = a, b
    urows, ys = [], []
    for j in range(n):
        size = n - j
        p = mx.argmax(mx.abs(s[:, :, 0]), axis=1)  # first maximum, as isamax
        idx = p.reshape(bsz, 1, 1)
        prow = mx.take_along_axis(s, idx, axis=1)  # (B, 1, size)
        pb = mx.take_along_axis(y, idx, axis=1)  # (B, 1, k)
        urows.append(mx.pad(prow[:, 0, :], [(0, 0), (j, 0)]) if j else prow[:, 0, :])
        ys.append(pb[:, 0, :])
        if size == 1:
            break
        # Drop the pivot row: row p takes row 0's place, then row 0 goes.
        at_p = (mx.arange(size)[None, :] == p[:, None])[:, :, None]
        s = mx.where(at_p, s[:, :1, :], s)[:, 1:, :]
        y = mx.where(at_p, y[:, :1, :], y)[:, 1:, :]
        f = s[:, :, 0] / prow[:, :, 0]
        s = s[:, :, 1:] - f[:, :, None] * prow[:, :, 1:]
        y = y - f[:, :, None] * pb
    u = mx.stack(urows, axis=1)
    return solve_triangular_mlx(u, mx.stack(ys, axis=1), upper=True)


# ---------------------------------------------------------------------------
# GPU kernel forms (batched (B, ...) float32 arrays, n <= 64)
# ---------------------------------------------------------------------------


def qr_kernel(a, kind, verbose=False):
    bsz, m, n = a.shape
    cfg = qr_config(m, n)
    k = cfg["K"]
    q, r = _launch(kind, "qr", [a], cfg, bsz, [(bsz, m, k), (bsz, k, n)], verbose)
    return q, r


def cholesky_kernel(a, kind, verbose=False):
    bsz, n, _ = a.shape
    (out,) = _launch(kind, "cholesky", [a], cholesky_config(n, bsz), bsz, [(bsz, n, n)], verbose)
    return out


def solve_kernel(a, b, kind, verbose=False):
    bsz, n, _ = a.shape
    cfg = solve_config(n, b.shape[-1])
    (out,) = _launch(kind, "solve", [a, b], cfg, bsz, [tuple(b.shape)], verbose)
    return out


def solve_triangular_kernel(a, b, kind, upper=False, verbose=False):
    bsz, n, _ = a.shape
    cfg = trsv_config(n, b.shape[-1], upper, bsz)
    (out,) = _launch(kind, "solve_triangular", [a, b], cfg, bsz, [tuple(b.shape)], verbose)
    return out


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

IMPLS = ("auto", "cuda", "metal", "mlx")


def choose_impl(impl, *dims):
    """The form to run: 'cuda', 'metal' or 'mlx' (see the module docstring)."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, not {impl!r}")
    if impl == "auto":
        kind = gpu_kernel_kind()
        return kind if kind is not None and fits_kernel(*dims) else "mlx"
    if impl in ("cuda", "metal"):
        reason = kernel_api(impl)
        if reason is not None:
            raise NotImplementedError(reason)
        if not fits_kernel(*dims):
            raise NotImplementedError(f"our kernels take matrices up to {KERNEL_MAX_DIM}; got {dims}")
    return impl


def _empty(lead_shapes):
    mx = mlx()
    return [mx.zeros(s, dtype=mx.float32) for s in lead_shapes]


def qr(a, impl="auto"):
    """Reduced QR of a (..., m, n) batch: Q (..., m, k), R (..., k, n)."""
    a, lead = _as_batch(a, 2)
    bsz, m, n = a.shape
    k = min(m, n)
    if bsz == 0 or k == 0:
        return tuple(_empty([lead + (m, k), lead + (k, n)]))
    form = choose_impl(impl, m, n)
    q, r = qr_mlx(a) if form == "mlx" else qr_kernel(a, form)
    return q.reshape(lead + (m, k)), r.reshape(lead + (k, n))


def cholesky(a, impl="auto"):
    """Lower Cholesky factor of a (..., n, n) batch of SPD matrices."""
    a, lead = _as_batch(a, 2)
    bsz, n, _ = a.shape
    if bsz == 0 or n == 0:
        return _empty([lead + (n, n)])[0]
    form = choose_impl(impl, n)
    out = cholesky_mlx(a) if form == "mlx" else cholesky_kernel(a, form)
    return out.reshape(lead + (n, n))


def _solve_common(a, b, solver_mlx, solver_kernel, impl):
    mx = mlx()
    a_in = mx.array(a) if not isinstance(a, mx.array) else a
    bb, vector = _rhs(a_in, b)
    a, lead = _as_batch(a_in, 2)
    bsz, n, _ = a.shape
    if bb.shape[0] != bsz or bb.shape[1] != n:
        raise ValueError(f"b of shape {tuple(getattr(b, 'shape', ()))} does not match a {tuple(a_in.shape)}")
    nrhs = bb.shape[2]
    out_shape = lead + ((n,) if vector else (n, nrhs))
    if bsz == 0 or n == 0 or nrhs == 0:
        return _empty([out_shape])[0]
    form = choose_impl(impl, n)
    out = solver_mlx(a, bb) if form == "mlx" else solver_kernel(a, bb, form)
    return out.reshape(out_shape)


def solve(a, b, impl="auto"):
    """x with a x = b: a (..., n, n); b (..., n) vectors or (..., n, k).

    b is a batch of vectors when it has one dimension less than a (as in
    torch.linalg.solve); batch dimensions must match (no broadcasting).
    """
    return _solve_common(a, b, solve_mlx, solve_kernel, impl)


def solve_triangular(a, b, upper=False, impl="auto"):
    """x with a x = b, a lower (or ``upper``) triangular; b as in :func:`solve`."""
    return _solve_common(
        a,
        b,
        lambda a_, b_: solve_triangular_mlx(a_, b_, upper=upper),
        lambda a_, b_, kind: solve_triangular_kernel(a_, b_, kind, upper=upper),
        impl,
    )


FUNCTIONS = {
    "qr": qr,
    "cholesky": cholesky,
    "solve": solve,
    "solve_triangular": solve_triangular,
}
