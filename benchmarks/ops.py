"""The operation catalogue of the mlx-benchmark project, as asv benchmarks.

One class per op family; each row of ``cases`` is one row of the seed tables
(``../shared/seeds/000``): its label, its full-size arguments (the seed's
shapes, never shrunk), and a small same-rank variant for the parity tests.
Every case runs on every backend of ``common.BACKENDS``.

Labels read like the seed rows, except that the seed's ``axi=`` is spelled
``axis=``. Families and cases are in the seed table's order (23 families, 91
cases). Beside them, ``Compile`` (not a seed table) times ``mx.compile``
itself: compiling a few representative functions plus their first call.

``track_mlx_version`` records the MLX version that was benchmarked (unit
"version", 0.32.4 as 0.032004), so the site shows which MLX every result
came from. Under asv every case first checks that the installed MLX is the
release the results are filed under (``common.check_mlx_release``).

Version gates: an MLX API that appeared after 0.2.0 (the oldest release this
suite runs on Linux) is checked with ``require_mlx`` (the case is skipped on
older releases) or chosen by ``mlx_version()`` where an older equivalent
exists; never by catching an exception.

Timing on a 2-core CPU: some seed shapes take a second or more per call on
``mlx_cpu`` or ``torch_cpu`` (MLX's Linux CPU matmul is the slowest), and
inputs of up to 1.3e8 floats take seconds to make in every asv process. Such
families set asv's ``rounds``/``number``/``repeat``/``warmup_time``/
``min_run_count`` (and ``timeout`` for MatMul and Linear), never a smaller
shape, to bound the time of a run. On this project's 2-core Linux VM, MLX
0.32.4, ``mlx_cpu`` + ``torch_cpu`` took 304 s, then 300 s (README,
"Measured here"; measured before ``Compile`` was added and before the slow
families' samples went from 5 or 4 s to 3 or 2 s: stale until measured
again) with::

    MLX_ASV_BACKENDS=mlx_cpu,torch_cpu asv run --launch-method forkserver -b "^ops\\.[^(]*\\(.*'(mlx_cpu|torch_cpu)'\\)$" v0.32.4^!
"""

import abc
import math

import numpy as np

from .common import (
    Case,
    CaseTable,
    check_mlx_release,
    integers,
    mlx,
    mlx_version,
    normal,
    parse_version,
    profile_event,
    read_only_inputs,
    require_mlx,
    rng,
    shape_label,
    torch,
    uniform,
)


def mlx_at_least(version):
    """True where the installed MLX is at least ``version`` (a version gate)."""
    have = mlx_version()
    return have is not None and have >= parse_version(version)


def mlx_nn():
    import mlx.nn as nn

    return nn


def torch_functional():
    import torch.nn.functional as F

    return F


def axis_cases(*rows):
    """Cases of an op along one axis: rows of (shape, axis, small shape).

    Labels read ``dim=64x1000000 axis=-1``; the arguments are (shape, axis).
    """
    return tuple(
        Case(f"{shape_label(shape)} axis={axis}", (shape, axis), (small, axis))
        for shape, axis, small in rows
    )


class OpFamily(CaseTable):
    """An op family: ``inputs`` makes NumPy data, ``mlx_op``/``torch_op`` the op.

    Both frameworks get the same NumPy inputs (``torch_layout`` may permute
    them into torch's layout, outside the timed region); the timed callable
    evaluates (MLX) or synchronizes (GPU) the op's result, and is called once
    when it is built (a warm-up outside the timed region).
    """

    # Parity tolerances of the tests (float32 against float32).
    rtol = 1e-4
    atol = 1e-5

    # Abstract, so that asv does not take this base for a benchmark.
    @abc.abstractmethod
    def inputs(self, args, key):
        """The NumPy inputs of one case, from the suite's seeded generator."""

    @abc.abstractmethod
    def mlx_op(self, args):
        """A function of the MLX arrays that returns the op's result.

        Raises NotImplementedError (via ``require_mlx``) where this MLX
        release lacks the API; asv then shows the case as skipped.
        """

    @abc.abstractmethod
    def torch_op(self, args):
        """A function of the torch tensors that returns the op's result."""

    def torch_layout(self, arrays, args):
        """The NumPy inputs as torch takes them (e.g. channels first, int64
        indices). Runs once per case, outside the timed region."""
        return arrays

    def torch_prepare(self, tensors, args):
        """Last views of the torch tensors (e.g. an expanded index), outside
        the timed region."""
        return tensors

    def build(self, backend, args, key):
        # The op first: a version gate skips the case before any data is made.
        op = self.mlx_op(args) if backend.is_mlx else self.torch_op(args)
        with read_only_inputs(backend.copies_to_device):
            arrays = self.inputs(args, key)
        if not backend.is_mlx:
            arrays = self.torch_layout(arrays, args)
        profile_event("inputs")
        arrays = backend.arrays(arrays)
        if not backend.is_mlx:
            arrays = self.torch_prepare(arrays, args)
        profile_event("on_device")
        fn = backend.timed(op, *arrays)
        if not backend.compiled:  # Backend.timed has called a compiled one already
            # Warm up once, here, outside the timed region: asv's first sample
            # is never a cold call (lazy inits, kernel JIT, first-touch
            # allocations), even where a single call outlasts asv's warm-up
            # budget and becomes the only sample (``_Slow``).
            fn()
        return fn

    def time_op(self, case, backend):
        self.fn()


class _BigInputs:
    """asv settings for families whose seed-sized inputs take seconds to
    generate (up to 1.3e8 normal floats per input, ~1.5-3.5 s here).

    asv runs every (case, backend) in a process of its own for each round and
    the inputs are made once per process: one round instead of asv's default
    two halves that cost. Shapes are never shrunk.
    """

    rounds = 1


class _Slow(_BigInputs):
    """asv settings for families where one call at the seed's shapes takes
    ~0.3 s to ~40 s on a 2-core CPU (MLX's CPU matmul: up to ~35 s).

    ``OpFamily.build`` calls every callable once when it builds it, outside
    the timed region, so no sample is a cold call; asv adds no warm-up of its
    own (``warmup_time = 0``). Then single-call samples (``number = 1``) until
    3 samples or 2 s: a call slower than 2 s is measured once
    (``min_run_count = 1``). One round (see ``_BigInputs``). Why so few: the
    verdicts (reporting/verdicts.py) take each process's fastest sample and
    the spread between processes, so a comparison gains far more from another
    process (a round of tools/gate.py) than from more samples in one; and
    asv's defaults (2 rounds, each 0.1 s of warm-up calls then up to 5 samples
    or 10 s, at least 2 calls) would take ~20 s per (case, backend) for a
    1.5 s call and ~140 s for a 35 s one. Shapes are never shrunk.
    """

    number = 1
    warmup_time = 0
    min_run_count = 1
    repeat = (1, 3, 2.0)


# --------------------------------------------------------------------------
# Reductions, sorting, concatenation
# --------------------------------------------------------------------------


class Argmax(OpFamily):
    """Times argmax along one axis (mx.argmax / torch.argmax)."""

    cases = axis_cases(
        ((64, 1024, 128), 0, (4, 5, 6)),
        ((64, 1024, 128), 1, (4, 5, 6)),
        ((64, 1024, 128), 2, (4, 5, 6)),
        ((64, 128, 1024), 2, (4, 6, 5)),
    )
    # Indices: compared exactly (ties have probability ~0 with normal data).
    rtol, atol = 0, 0

    def inputs(self, args, key):
        return [normal(key, args[0])]

    def mlx_op(self, args):
        axis = args[1]
        return lambda x: mlx().argmax(x, axis=axis)

    def torch_op(self, args):
        axis = args[1]
        return lambda x: torch().argmax(x, dim=axis)


class BCE(OpFamily):
    """Times the mean binary cross-entropy loss (mlx.nn.losses / torch F.binary_cross_entropy).

    Mean binary cross-entropy of probabilities against {0, 1} targets.

    The same loss from the same data in both frameworks: predictions are
    probabilities in (0.01, 0.99) and targets are 0.0/1.0 floats. torch:
    ``F.binary_cross_entropy``; MLX: ``nn.losses.binary_cross_entropy`` with
    ``with_logits=False`` (both clamp log() at -100; no input here gets near).
    """

    cases = tuple(
        Case(shape_label(shape, shape), (shape,), (small,))
        for shape, small in [
            ((1000000,), (50,)),
            ((100000, 32), (20, 3)),
            ((100000, 64, 2), (10, 3, 2)),
            ((128, 100000), (3, 20)),
        ]
    )
    # A float32 mean over up to 1.3e7 terms, summed in different orders.
    rtol, atol = 1e-4, 1e-5

    def inputs(self, args, key):
        shape = args[0]
        probs = uniform(key + ("p",), shape, 0.01, 0.99)
        targets = integers(key + ("t",), shape, 2).astype(np.float32)
        return [probs, targets]

    def mlx_op(self, args):
        # with_logits=False is in mlx.nn.losses since 0.0.11 (older than 0.2.0).
        require_mlx("0.0.11", "mlx.nn.losses.binary_cross_entropy(with_logits=False)")
        bce = mlx_nn().losses.binary_cross_entropy
        return lambda p, t: bce(p, t, with_logits=False, reduction="mean")

    def torch_op(self, args):
        F = torch_functional()
        return lambda p, t: F.binary_cross_entropy(p, t, reduction="mean")


class Concat(_Slow, OpFamily):
    """Times concatenating two arrays along an axis (mx.concatenate / torch.cat)."""

    cases = tuple(
        Case(f"{shape_label(a, b)} axis={axis}", (a, b, axis), (sa, sb, axis))
        for a, b, axis, sa, sb in [
            ((1000000, 64), (1000000, 32), 1, (20, 4), (20, 3)),
            ((1000000, 64), (1000000, 128), 1, (20, 4), (20, 5)),
            ((1000000, 64), (1000000, 64), 0, (20, 4), (20, 4)),
            ((64, 1000000), (64, 1000000), 0, (4, 20), (4, 20)),
        ]
    )
    # A copy: exact.
    rtol, atol = 0, 0

    def inputs(self, args, key):
        return [normal(key + (0,), args[0]), normal(key + (1,), args[1])]

    def mlx_op(self, args):
        axis = args[2]
        return lambda a, b: mlx().concatenate([a, b], axis=axis)

    def torch_op(self, args):
        axis = args[2]
        return lambda a, b: torch().cat([a, b], dim=axis)


# --------------------------------------------------------------------------
# Convolutions
#
# Layouts: MLX convolutions are channels-last, input (N, L, C_in) or
# (N, H, W, C_in) and weight (C_out, K, C_in) or (C_out, KH, KW, C_in), and
# the seed labels give the shapes in that layout. torch is channels-first:
# input (N, C_in, L) / (N, C_in, H, W), weight (C_out, C_in, K) /
# (C_out, C_in, KH, KW). Both frameworks get the same NumPy data: made in the
# MLX layout and transposed (and made contiguous) for torch once, outside the
# timed region. The torch result is channels-first (N, C_out, L_out) /
# (N, C_out, H_out, W_out); the tests transpose it before comparing.
# Both: stride 1, no padding, float32.
# --------------------------------------------------------------------------


class Conv1d(_Slow, OpFamily):
    """Times a 1-D convolution, stride 1, no padding (mx.conv1d / torch F.conv1d)."""

    cases = tuple(
        Case(shape_label(x, w), (x, w), small)
        for x, w, small in [
            ((100, 256, 3), (8, 3, 3), ((3, 12, 3), (4, 3, 3))),
            ((100, 256, 256), (8, 3, 256), ((3, 12, 16), (4, 3, 16))),
            ((16, 1000, 80), (128, 11, 80), ((2, 30, 8), (5, 11, 8))),
            ((16, 1000, 3), (128, 11, 3), ((2, 30, 3), (5, 11, 3))),
        ]
    )
    rtol, atol = 1e-4, 1e-4

    def inputs(self, args, key):
        return [normal(key + (0,), args[0]), normal(key + (1,), args[1])]

    def torch_layout(self, arrays, args):
        x, w = arrays
        return [x.transpose(0, 2, 1), w.transpose(0, 2, 1)]

    def mlx_op(self, args):
        return lambda x, w: mlx().conv1d(x, w)

    def torch_op(self, args):
        F = torch_functional()
        return lambda x, w: F.conv1d(x, w)


class Conv2d(_Slow, OpFamily):
    """Times a 2-D convolution, stride 1, no padding (mx.conv2d / torch F.conv2d)."""

    cases = tuple(
        Case(shape_label(x, w), (x, w), small)
        for x, w, small in [
            ((100, 256, 256, 3), (8, 3, 3, 3), ((2, 9, 10, 3), (4, 3, 3, 3))),
            ((10, 256, 256, 12), (8, 3, 3, 12), ((2, 9, 10, 6), (4, 3, 3, 6))),
            ((1, 256, 256, 128), (8, 3, 3, 128), ((1, 9, 10, 16), (4, 3, 3, 16))),
            ((100, 28, 28, 3), (8, 3, 3, 3), ((3, 7, 8, 3), (4, 3, 3, 3))),
            ((1000, 28, 28, 3), (8, 3, 3, 3), ((5, 7, 8, 3), (4, 3, 3, 3))),
        ]
    )
    rtol, atol = 1e-4, 1e-4

    def inputs(self, args, key):
        return [normal(key + (0,), args[0]), normal(key + (1,), args[1])]

    def torch_layout(self, arrays, args):
        x, w = arrays
        return [x.transpose(0, 3, 1, 2), w.transpose(0, 3, 1, 2)]

    def mlx_op(self, args):
        return lambda x, w: mlx().conv2d(x, w)

    def torch_op(self, args):
        F = torch_functional()
        return lambda x, w: F.conv2d(x, w)


# --------------------------------------------------------------------------
# Gather and scatter (graph message passing: ``dim=NODESxFEATURES dim=EDGES``)
# --------------------------------------------------------------------------


class _IndexFamily(OpFamily):
    """Cases ``((nodes, features), edges)``: a (nodes, features) table and
    ``edges`` row indices into it. Indices are int32 for MLX and the same
    values as int64 for torch (what torch's scatter requires), converted
    outside the timed region; they are inputs of the op, not constants, so
    the op stays a pure function of arrays (compile-friendly)."""

    @staticmethod
    def _cases(smalls):
        seed = [((64, 16), 10), ((64, 16), 1000), ((64, 16), 1000000),
                ((1024, 32), 10), ((1024, 32), 1000), ((1024, 32), 1000000)]
        return tuple(
            Case(shape_label(table, (edges,)), (table, edges), small)
            for (table, edges), small in zip(seed, smalls)
        )

    def torch_layout(self, arrays, args):
        return [a.astype(np.int64) if a.dtype.kind == "i" else a for a in arrays]


# Small variants keep each seed case's character: fewer edges than nodes
# (rows hit at most once) or many more (every row hit many times).
_INDEX_SMALLS = [((8, 3), 5), ((8, 3), 40), ((8, 3), 200),
                 ((20, 4), 5), ((20, 4), 15), ((20, 4), 300)]


class Gather(_IndexFamily):
    """Times gathering rows by index, ``table[idx]``.

    ``table[idx]``: ``edges`` rows gathered from a (nodes, features) table,
    with random (repeating) row indices."""

    cases = _IndexFamily._cases(_INDEX_SMALLS)
    rtol, atol = 0, 0

    def inputs(self, args, key):
        (nodes, features), edges = args
        return [normal(key, (nodes, features)), integers(key, (edges,), nodes)]

    def mlx_op(self, args):
        return lambda table, idx: table[idx]

    def torch_op(self, args):
        return lambda table, idx: table[idx]


class Scatter(_IndexFamily):
    """Times an out-of-place row assignment, ``out[idx] = v``.

    ``out = x.copy(); out[idx] = v``: rows of ``v`` assigned to rows
    ``idx`` of a (nodes, features) array, out of place in both frameworks.

    Plain assignment with duplicate indices is nondeterministic (which write
    wins is up to the framework and its threads), so results would not be
    comparable. Where edges <= nodes the indices are unique (a prefix of a
    seeded permutation). Where edges > nodes (the seed's 1000 and 1000000
    edges into 64 nodes, 1000000 into 1024) unique indices are impossible at
    the seed's shapes; there the indices are seeded permutations of all rows,
    repeated, and ``v[j] = table[idx[j]]``, so every write to a row carries
    the same values and the result does not depend on which write wins.

    MLX: ``out[idx] = v`` on a new handle of ``x`` (``mx.stop_gradient``, no
    copy), since ``x[idx] = v`` would rebind the cached input array itself.
    torch: ``x.index_put((idx,), v)``, the out-of-place ``x[idx] = v``.
    """

    cases = _IndexFamily._cases(_INDEX_SMALLS)
    rtol, atol = 0, 0

    @staticmethod
    def indices(key, nodes, edges):
        gen = rng(key, "permutation")
        blocks = [gen.permutation(nodes) for _ in range(-(-edges // nodes))]
        return np.concatenate(blocks)[:edges].astype(np.int32)

    def inputs(self, args, key):
        (nodes, features), edges = args
        x = normal(key + ("x",), (nodes, features))
        table = normal(key + ("table",), (nodes, features))
        idx = self.indices(key, nodes, edges)
        return [x, idx, table[idx]]

    def mlx_op(self, args):
        mx = mlx()

        def scatter(x, idx, v):
            out = mx.stop_gradient(x)
            out[idx] = v
            return out

        return scatter

    def torch_op(self, args):
        return lambda x, idx, v: x.index_put((idx,), v)


class _ScatterReduce(_IndexFamily):
    """``x.at[idx].<reduce>(v)`` in MLX against torch's documented
    ``scatter_reduce(x, 0, index, v, reduce, include_self=True)``.

    MLX's ``.at`` returns a new array (``x`` is unchanged), with every update
    applied: duplicate indices accumulate (sum) or take the maximum (max),
    and the original rows of ``x`` take part. That is torch's
    ``include_self=True``. The op returns the array that ``.at`` returns, so
    the timed callable evaluates the scatter itself (the original code
    returned the unchanged ``x`` and so timed nothing).

    torch's scatter_reduce pairs ``index[i][j]`` with ``v[i][j]``: the index is
    expanded over all feature columns (a stride-0 view, made outside the
    timed region), so every column is scattered, not just the first.
    Indices are random with repeats (edges into nodes), as in the seed.
    """

    reduce_mlx = reduce_torch = None

    def inputs(self, args, key):
        (nodes, features), edges = args
        x = normal(key + ("x",), (nodes, features))
        v = normal(key + ("v",), (edges, features))
        return [x, integers(key, (edges,), nodes), v]

    def torch_prepare(self, tensors, args):
        x, idx, v = tensors
        return [x, idx.unsqueeze(1).expand_as(v), v]

    def mlx_op(self, args):
        # The .at property is in every release this suite runs (0.2.0 on).
        method = self.reduce_mlx
        return lambda x, idx, v: getattr(x.at[idx], method)(v)

    def torch_op(self, args):
        reduce = self.reduce_torch
        return lambda x, index, v: torch().scatter_reduce(
            x, 0, index, v, reduce=reduce, include_self=True
        )


class ScatterSum(_ScatterReduce):
    """Times a scatter-add of rows (``x.at[idx].add(v)`` / torch scatter_reduce sum)."""

    cases = _IndexFamily._cases(_INDEX_SMALLS)
    reduce_mlx, reduce_torch = "add", "sum"
    # Up to ~16000 float32 additions per element, in different orders.
    rtol, atol = 1e-4, 1e-4


class ScatterMax(_ScatterReduce):
    """Times a scatter-max of rows (``x.at[idx].maximum(v)`` / torch scatter_reduce amax)."""

    cases = _IndexFamily._cases(_INDEX_SMALLS)
    reduce_mlx, reduce_torch = "maximum", "amax"
    rtol, atol = 0, 0


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------


class LayerNorm(OpFamily):
    """Times layer norm over the last axis (mx.fast.layer_norm / torch F.layer_norm).

    Layer norm over the last axis, with weight and bias, eps=1e-5.

    MLX >= 0.8.0: ``mx.fast.layer_norm``. Older releases have no fused
    kernel: they run the expression of that release's ``mlx.nn.LayerNorm``
    (mean, var, rsqrt), what a user of that release got. A step in the
    timings at 0.8.0 is that change of implementation.
    """

    cases = tuple(
        Case(shape_label(shape), (shape,), (small,))
        for shape, small in [
            ((64, 128, 1024), (2, 3, 16)),
            ((128, 64, 1024), (3, 2, 16)),
        ]
    )
    eps = 1e-5
    rtol, atol = 1e-4, 1e-4

    def inputs(self, args, key):
        shape = args[0]
        dims = shape[-1]
        x = normal(key + ("x",), shape)
        weight = uniform(key + ("w",), (dims,), 0.5, 1.5)
        bias = normal(key + ("b",), (dims,)) * np.float32(0.1)
        return [x, weight, bias]

    def mlx_op(self, args):
        mx, eps = mlx(), self.eps
        if mlx_at_least("0.8.0"):
            return lambda x, w, b: mx.fast.layer_norm(x, w, b, eps)

        def layer_norm(x, w, b):
            mean = mx.mean(x, axis=-1, keepdims=True)
            var = mx.var(x, axis=-1, keepdims=True)
            return w * ((x - mean) * mx.rsqrt(var + eps)) + b

        return layer_norm

    def torch_op(self, args):
        F, eps = torch_functional(), self.eps
        return lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b, eps)


class Linear(_Slow, OpFamily):
    """Times an affine layer ``x @ W + b`` (mx.addmm / torch F.linear).

    ``x @ W + b`` with the seed's shapes: x (..., in), W (in, out), b (out,).

    MLX: ``mx.addmm(b, x, W)`` (in MLX since 0.0.10; ``x @ W + b`` before).
    torch: ``F.linear(x, W_t, b)`` with ``W_t = W.T`` (torch's (out, in)
    weight layout), made contiguous once outside the timed region, so both
    compute the same product from the same weights and bias.
    """

    cases = tuple(
        Case(shape_label(x, w, b), (x, w, b), small)
        for x, w, b, small in [
            ((100, 1024, 32), (32, 1024), (1024,), ((3, 5, 4), (4, 6), (6,))),
            ((100, 1024, 64), (64, 1024), (1024,), ((3, 5, 8), (8, 6), (6,))),
            ((100, 1024, 256), (256, 1024), (1024,), ((3, 5, 16), (16, 6), (6,))),
            ((100, 1024, 512), (512, 1024), (1024,), ((3, 5, 32), (32, 6), (6,))),
            ((100, 1, 51200), (51200, 1), (1,), ((3, 1, 200), (200, 1), (1,))),
        ]
    )
    rtol, atol = 1e-4, 1e-4
    # One call of the largest case takes ~15 s on MLX 0.32 and ~135 s on
    # MLX 0.2.0 (a 2-core CPU): room above CaseTable's 300 s.
    timeout = 600

    def inputs(self, args, key):
        return [normal(key + (i,), shape) for i, shape in enumerate(args)]

    def torch_layout(self, arrays, args):
        x, w, b = arrays
        return [x, w.T, b]

    def mlx_op(self, args):
        mx = mlx()
        if mlx_at_least("0.0.10"):
            return lambda x, w, b: mx.addmm(b, x, w)
        return lambda x, w, b: x @ w + b

    def torch_op(self, args):
        F = torch_functional()
        return lambda x, w_t, b: F.linear(x, w_t, b)


class MatMul(_Slow, OpFamily):
    """Times a (batched) matrix product (mx.matmul / torch.matmul)."""

    cases = tuple(
        Case(shape_label(a, b), (a, b), small)
        for a, b, small in [
            ((32, 1, 1000), (32, 1000, 128), ((3, 1, 20), (3, 20, 5))),
            ((1000, 64, 256), (256, 32), ((5, 4, 6), (6, 3))),
            ((1000, 64, 1024), (1000, 1024, 32), ((5, 4, 6), (5, 6, 3))),
            ((1000, 1024, 64), (1000, 64, 256), ((5, 6, 4), (5, 4, 7))),
            ((64, 1000000), (1000000, 32), ((4, 50), (50, 3))),
            ((1000000, 64), (64, 1024), ((50, 4), (4, 6))),
        ]
    )
    rtol, atol = 1e-4, 1e-4
    # One call of dim=1000000x64 dim=64x1024 (131 GFLOP) takes ~35 s on
    # MLX 0.32 and ~315 s on MLX 0.2.0 on a 2-core CPU: past CaseTable's 300 s.
    timeout = 900

    def inputs(self, args, key):
        return [normal(key + (i,), shape) for i, shape in enumerate(args)]

    def mlx_op(self, args):
        return mlx().matmul

    def torch_op(self, args):
        return torch().matmul


class ScaledDotProductAttention(_Slow, OpFamily):
    """Times attention with a causal mask (mx.fast / torch F.scaled_dot_product_attention).

    ``softmax(q @ k.T * scale + mask) @ v`` with an additive causal mask.

    The original project's code meant an additive causal mask (its comment
    says so), but filled a *bool* tensor with -inf, which left it all True,
    i.e. it added a mask of ones (no masking at all). Here the mask is what was intended: float32, 0 where key <= query
    position and -inf above (``tril(diagonal=0)``, aligned top-left like
    torch's ``is_causal``), shape (T_q, T_kv); the same array is given to
    ``mx.fast.scaled_dot_product_attention(mask=...)`` and to torch's
    ``F.scaled_dot_product_attention(attn_mask=...)``, both of which add a
    float mask to the scores. Every query row keeps key 0, so no row is
    fully masked. scale = 1/sqrt(D).
    """

    cases = tuple(
        Case(shape_label(q, kv, kv), (q, kv), small)
        for q, kv, small in [
            ((64, 8, 16, 1024), (64, 8, 16, 1024), ((2, 3, 4, 8), (2, 3, 4, 8))),
            ((64, 8, 16, 1024), (64, 8, 64, 1024), ((2, 3, 4, 8), (2, 3, 10, 8))),
            ((64, 16, 16, 1024), (64, 16, 16, 1024), ((2, 4, 5, 8), (2, 4, 5, 8))),
            ((64, 16, 16, 1024), (64, 16, 64, 1024), ((2, 4, 5, 8), (2, 4, 12, 8))),
        ]
    )
    rtol, atol = 1e-4, 1e-5

    @staticmethod
    def causal_mask(t_q, t_kv):
        keep = np.tril(np.ones((t_q, t_kv), dtype=bool))
        return np.where(keep, 0.0, -np.inf).astype(np.float32)

    def inputs(self, args, key):
        q_shape, kv_shape = args
        q = normal(key + ("q",), q_shape)
        k = normal(key + ("k",), kv_shape)
        v = normal(key + ("v",), kv_shape)
        return [q, k, v, self.causal_mask(q_shape[2], kv_shape[2])]

    def mlx_op(self, args):
        require_mlx("0.6.0", "mx.fast.scaled_dot_product_attention")
        sdpa = mlx().fast.scaled_dot_product_attention
        scale = 1.0 / math.sqrt(args[0][-1])
        return lambda q, k, v, mask: sdpa(q, k, v, scale=scale, mask=mask)

    def torch_op(self, args):
        F = torch_functional()
        scale = 1.0 / math.sqrt(args[0][-1])
        return lambda q, k, v, mask: F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=scale
        )


# --------------------------------------------------------------------------
# Activations: mlx.nn's functions (what MLX users call; compiled kernels in
# recent releases) against torch.nn.functional, same NumPy input.
# --------------------------------------------------------------------------

_ACTIVATION_SHAPES = [((128, 16, 1024), (2, 3, 10)), ((64, 128, 1024), (3, 2, 10))]


class _Activation(OpFamily):
    cases = ()
    rtol, atol = 1e-5, 1e-6

    @staticmethod
    def _cases():
        return tuple(Case(shape_label(s), (s,), (small,)) for s, small in _ACTIVATION_SHAPES)

    def inputs(self, args, key):
        return [normal(key, args[0])]


class LeakyReLU(_Activation):
    """Times the leaky ReLU activation (mlx.nn.leaky_relu / torch F.leaky_relu)."""

    cases = _Activation._cases()
    negative_slope = 0.01

    def mlx_op(self, args):
        fn, slope = mlx_nn().leaky_relu, self.negative_slope
        return lambda x: fn(x, negative_slope=slope)

    def torch_op(self, args):
        F, slope = torch_functional(), self.negative_slope
        return lambda x: F.leaky_relu(x, negative_slope=slope)


class PReLU(_Activation):
    """Times the PReLU activation (mlx.nn.prelu / torch F.prelu).

    One learnable slope (``dim=1``), the same value for both frameworks."""

    cases = tuple(
        Case(shape_label(s, (1,)), (s, (1,)), (small, (1,))) for s, small in _ACTIVATION_SHAPES
    )

    def inputs(self, args, key):
        return [normal(key, args[0]), uniform(key + ("alpha",), args[1], 0.05, 0.5)]

    def mlx_op(self, args):
        fn = mlx_nn().prelu
        return lambda x, alpha: fn(x, alpha)

    def torch_op(self, args):
        F = torch_functional()
        return lambda x, alpha: F.prelu(x, alpha)


class ReLU(_Activation):
    """Times the ReLU activation (mlx.nn.relu / torch F.relu)."""

    cases = _Activation._cases()

    def mlx_op(self, args):
        fn = mlx_nn().relu
        return lambda x: fn(x)

    def torch_op(self, args):
        F = torch_functional()
        return lambda x: F.relu(x)


class SeLU(_Activation):
    """Times the SELU activation (mlx.nn.selu / torch F.selu)."""

    cases = _Activation._cases()

    def mlx_op(self, args):
        fn = mlx_nn().selu
        return lambda x: fn(x)

    def torch_op(self, args):
        F = torch_functional()
        return lambda x: F.selu(x)


class Sigmoid(_Activation):
    """Times the sigmoid activation (mlx.nn.sigmoid / torch.sigmoid).

    ``mlx.nn.sigmoid`` is exported from MLX 0.5.0 on; before that the
    same op is ``mx.sigmoid`` (which ``mlx.nn.sigmoid`` wraps)."""

    cases = _Activation._cases()

    def mlx_op(self, args):
        fn = mlx_nn().sigmoid if mlx_at_least("0.5.0") else mlx().sigmoid
        return lambda x: fn(x)

    def torch_op(self, args):
        return lambda x: torch().sigmoid(x)


class Softmax(_Slow, OpFamily):
    """Times softmax along the last axis (mx.softmax / torch.softmax)."""

    cases = axis_cases(
        ((64, 1000000), -1, (4, 50)),
        ((1000000, 64), -1, (50, 4)),
        ((64, 16, 32, 1024), -1, (2, 3, 4, 5)),
        ((128, 16, 32, 1024), -1, (3, 2, 4, 6)),
        ((1024, 16, 32, 128), -1, (4, 2, 3, 5)),
        ((1024, 64, 32, 8), -1, (5, 4, 3, 2)),
    )

    def inputs(self, args, key):
        return [normal(key, args[0])]

    def mlx_op(self, args):
        axis = args[1]
        return lambda x: mlx().softmax(x, axis=axis)

    def torch_op(self, args):
        axis = args[1]
        return lambda x: torch().softmax(x, dim=axis)


class Softplus(_Activation):
    """Times the softplus activation (mlx.nn.softplus / torch F.softplus).

    ``log(1 + exp(x))``. torch's softplus switches to ``x`` above
    ``threshold=20``; with normal inputs (|x| < 7) that never applies."""

    cases = _Activation._cases()

    def mlx_op(self, args):
        fn = mlx_nn().softplus
        return lambda x: fn(x)

    def torch_op(self, args):
        F = torch_functional()
        return lambda x: F.softplus(x)


class Sort(_Slow, OpFamily):
    """Times sorting along one axis (mx.sort / torch.sort's values).

    Sorted values along ``axis``. torch.sort always computes the indices
    too (it has no values-only sort); MLX's sort returns values only."""

    cases = axis_cases(
        ((64, 128, 1024), 0, (4, 5, 6)),
        ((64, 128, 1024), 1, (4, 5, 6)),
        ((64, 128, 1024), 2, (4, 5, 6)),
    )
    rtol, atol = 0, 0

    def inputs(self, args, key):
        return [normal(key, args[0])]

    def mlx_op(self, args):
        axis = args[1]
        return lambda x: mlx().sort(x, axis=axis)

    def torch_op(self, args):
        axis = args[1]
        return lambda x: torch().sort(x, dim=axis).values


class Sum(_BigInputs, OpFamily):
    """Times a sum along one axis (mx.sum / torch.sum)."""

    cases = axis_cases(
        ((64, 128, 128, 128), 0, (2, 3, 4, 5)),
        ((64, 128, 128, 128), 1, (2, 3, 4, 5)),
        ((64, 128, 128, 128), 2, (2, 3, 4, 5)),
        ((64, 128, 128, 128), 3, (2, 3, 4, 5)),
    )
    rtol, atol = 1e-4, 1e-4

    def inputs(self, args, key):
        return [normal(key, args[0])]

    def mlx_op(self, args):
        axis = args[1]
        return lambda x: mlx().sum(x, axis=axis)

    def torch_op(self, args):
        axis = args[1]
        return lambda x: torch().sum(x, dim=axis)


class SumAll(_BigInputs, OpFamily):
    """Times a sum of all elements (mx.sum / torch.sum)."""

    cases = tuple(
        Case(shape_label(shape), (shape,), (small,))
        for shape, small in [
            ((64, 128, 128, 128), (2, 3, 4, 5)),
            ((1000000,), (100,)),
            ((1000000, 128), (100, 3)),
            ((128, 1000000), (3, 100)),
        ]
    )
    # A float32 sum of up to 1.3e8 elements: the two libraries add in different
    # orders, so compare relative to the magnitude of the sum.
    rtol, atol = 1e-4, 1e-3

    def inputs(self, args, key):
        return [normal(key, args[0])]

    def mlx_op(self, args):
        return lambda x: mlx().sum(x)

    def torch_op(self, args):
        return lambda x: torch().sum(x)


# --------------------------------------------------------------------------
# The compile path: what mx.compile itself costs
# --------------------------------------------------------------------------


class Compile(CaseTable):
    """Times mx.compile itself: compiling a function afresh plus its first call, evaluated.

    ``mlx_gpu_compile`` times compiled functions warm; this shows what the
    compilation costs. Each timed call wraps the case's function in a new
    Python function object, ``mx.compile``s it and calls it once on the
    case's inputs, then evaluates the result: MLX keys its compile cache by
    the function object and erases the entry when the compiled function is
    freed (every release from 0.2.0 on), so every call traces, simplifies and
    fuses the graph again. What MLX caches per process below that (the
    generated kernels, compiled by the system compiler on the CPU or JIT on
    the GPU) is filled by the one call made when the case is built, outside
    the timed region, so the samples are the front end's cost, not one-time
    code generation. The functions use plain ``mx`` ops only (``mlx.nn``'s
    activations are themselves compiled, and cached, in recent releases).

    MLX backends only (``mlx_cpu``, ``mlx_gpu``). The parity test checks that
    each compiled function returns what the uncompiled one does.
    """

    backends = ("mlx_cpu", "mlx_gpu")
    # The functions' results against the uncompiled functions' (tests).
    rtol, atol = 1e-5, 1e-6

    # Small inputs, so that the call's arithmetic does not hide the compile.
    cases = (
        Case("softmax dim=16x1024", ("softmax", (16, 1024)), ("softmax", (4, 10))),
        Case("layer_norm dim=16x1024", ("layer_norm", (16, 1024)), ("layer_norm", (4, 10))),
        Case("gelu_mlp dim=16x256 dim=256x256", ("gelu_mlp", (16, 256), (256, 256)), ("gelu_mlp", (4, 10), (10, 6))),
        Case("attention dim=1x4x32x32", ("attention", (1, 4, 32, 32)), ("attention", (2, 2, 5, 4))),
    )

    @staticmethod
    def function(args):
        """The case's function of MLX arrays (uncompiled)."""
        mx, name = mlx(), args[0]
        if name == "softmax":
            return lambda x: mx.softmax(x, axis=-1)
        if name == "layer_norm":
            eps = 1e-5

            def layer_norm(x, w, b):
                mean = mx.mean(x, axis=-1, keepdims=True)
                var = mx.var(x, axis=-1, keepdims=True)
                return w * ((x - mean) * mx.rsqrt(var + eps)) + b

            return layer_norm
        if name == "gelu_mlp":

            def gelu_mlp(x, w, b):
                h = x @ w + b
                return 0.5 * h * (1 + mx.erf(h * (1 / math.sqrt(2))))

            return gelu_mlp
        if name == "attention":

            def attention(q, k, v, mask):
                scale = 1 / math.sqrt(q.shape[-1])
                scores = (q @ mx.swapaxes(k, -1, -2)) * scale + mask
                return mx.softmax(scores, axis=-1) @ v

            return attention
        raise ValueError(f"unknown function {name!r}")

    @staticmethod
    def inputs(args, key):
        """The NumPy inputs of the case's function."""
        name = args[0]
        if name == "softmax":
            return [normal(key, args[1])]
        if name == "layer_norm":
            shape = args[1]
            return [normal(key + ("x",), shape), uniform(key + ("w",), shape[-1:], 0.5, 1.5),
                    normal(key + ("b",), shape[-1:])]
        if name == "gelu_mlp":
            x, w = args[1], args[2]
            return [normal(key + ("x",), x), normal(key + ("w",), w) * np.float32(1 / math.sqrt(w[0])),
                    normal(key + ("b",), w[-1:])]
        if name == "attention":
            shape = args[1]
            t = shape[-2]
            mask = ScaledDotProductAttention.causal_mask(t, t)
            return [normal(key + (n,), shape) for n in ("q", "k", "v")] + [mask]
        raise ValueError(f"unknown function {name!r}")

    def build(self, be, args, key):
        require_mlx("0.1.0", "mx.compile")
        mx = mlx()
        body = self.function(args)
        be.activate()
        arrays = be.arrays(self.inputs(args, key))
        evaluate = be.evaluate

        def call():
            fresh = lambda *a: body(*a)  # noqa: E731  a new function object: compiled from scratch
            return evaluate(mx.compile(fresh)(*arrays))

        call()  # fills MLX's per-process kernel caches, outside the timed region
        return call

    def time_compile(self, case, backend):
        self.fn()


# --------------------------------------------------------------------------
# The MLX release being timed, as a result of its own
# --------------------------------------------------------------------------


def mlx_version_number(version):
    """'0.32.4' -> 0.032004: X + Y / 1000 + Z / 1000000 (Y, Z < 1000), so
    that the site's graph of it steps up with every release."""
    major, minor, patch = parse_version(version)
    return major + minor / 1000 + patch / 1000000


def track_mlx_version():
    """The MLX version that was benchmarked (0.32.4 shows as 0.032004)."""
    check_mlx_release()  # under asv: it is the release the results are filed under
    mx = mlx()
    if mx is None:
        raise NotImplementedError("MLX is not installed")
    return mlx_version_number(mx.__version__)


track_mlx_version.unit = "version"
