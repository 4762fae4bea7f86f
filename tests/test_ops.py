"""Tests of benchmarks/ops.py: the callables asv times compute the right thing.

Every case is checked at its small same-rank size (``Case.small``): MLX
against torch, and both against a NumPy reference computed from the very
NumPy inputs the callables were built from. Tolerances are per family
(``Family.rtol/atol``, documented there): exact for copies, indices, sorts
and maxima; ~1e-4 relative where float32 sums are added up in different
orders. The NumPy references are computed in float64.

Then one test per correctness requirement of the op catalogue (axis passed,
scatter result returned and evaluated, all feature columns scattered, unique
or idempotent assignment, same BCE, the causal additive SDPA mask, conv
layouts, Linear/LayerNorm parameters, version gates), the timed-callable
evaluation check, and asv's view of the module (23 classes, 91 cases).

Run: ``python -m pytest tests/test_ops.py -q``.
"""

import inspect
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

import gpu_parity as gpu
from benchmarks.lib.timing import call_seconds

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common, ops  # noqa: E402
from benchmarks.common import Backend  # noqa: E402

mx = common.mlx()
torch = common.torch()
needs_both = pytest.mark.skipif(
    mx is None or torch is None, reason="needs both MLX and torch installed"
)

EXPECTED_COUNTS = {
    "Argmax": 4, "BCE": 4, "Concat": 4, "Conv1d": 4, "Conv2d": 5, "Gather": 6,
    "LayerNorm": 2, "LeakyReLU": 2, "Linear": 5, "MatMul": 6, "PReLU": 2,
    "ReLU": 2, "ScaledDotProductAttention": 4, "Scatter": 6, "ScatterSum": 6,
    "ScatterMax": 6, "SeLU": 2, "Sigmoid": 2, "Softmax": 6, "Softplus": 2,
    "Sort": 3, "Sum": 4, "SumAll": 4,
}


def benchmark_classes():
    """The classes asv collects from benchmarks.ops, by asv_runner's own rules
    (public, a class, not abstract, with a ``time_`` method), that are tables
    of cases."""
    found = {}
    for name, obj in vars(ops).items():
        if name.startswith("_") or not inspect.isclass(obj) or inspect.isabstract(obj):
            continue
        if any(attr.startswith("time_") for attr in dir(obj)):
            found[name] = obj
    return found


# The op catalogue: the tables of op cases (Compile, which times mx.compile
# itself, is tested on its own below).
FAMILIES = {name: cls for name, cls in benchmark_classes().items() if issubclass(cls, ops.OpFamily)}
ALL_CASES = [
    pytest.param(cls, case.label, id=f"{name}/{case.label}")
    for name, cls in FAMILIES.items()
    for case in cls.cases
]

MLX = Backend("mlx_cpu") if mx is not None else None
TORCH = Backend("torch_cpu") if torch is not None else None


def key_of(cls, label, small=True):
    """The key CaseTable.callable builds a case's inputs with."""
    return (cls.__module__, cls.__name__, label, small)


def inputs_of(cls, label, small=True):
    """The NumPy inputs the callables of one case are built from."""
    case = cls.case(label)
    return cls().inputs(case.small if small else case.args, key_of(cls, label, small))


def callable_or_skip(cls, label, backend_name, small=True):
    """The case's timed callable; skipped, as asv does, where a version gate
    says this MLX release lacks the API (NotImplementedError)."""
    try:
        return cls.callable(label, backend_name, small=small)
    except NotImplementedError as reason:
        pytest.skip(f"{cls.__name__} on {backend_name}: {reason}")


def run_case(cls, label, backend_name, small=True):
    be = Backend(backend_name)
    return be.to_numpy(callable_or_skip(cls, label, backend_name, small)())


def in_mlx_layout(cls, torch_result):
    """torch's channels-first conv output in MLX's channels-last layout."""
    if cls is ops.Conv1d:
        return torch_result.transpose(0, 2, 1)
    if cls is ops.Conv2d:
        return torch_result.transpose(0, 2, 3, 1)
    return torch_result


def assert_close(actual, expected, cls, what):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if actual.dtype.kind in "iu" or expected.dtype.kind in "iu":
        np.testing.assert_array_equal(actual.astype(np.int64), expected.astype(np.int64), err_msg=what)
    else:
        np.testing.assert_allclose(
            actual.astype(np.float64), expected.astype(np.float64),
            rtol=cls.rtol, atol=cls.atol, err_msg=what,
        )


# --------------------------------------------------------------------------
# NumPy references (float64), from the same NumPy inputs
# --------------------------------------------------------------------------


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_conv1d(x, w):
    """Channels-last valid conv: x (N, L, Ci), w (Co, K, Ci) -> (N, L-K+1, Co)."""
    n, length, _ = x.shape
    co, k, _ = w.shape
    out = np.zeros((n, length - k + 1, co))
    for i in range(length - k + 1):
        out[:, i, :] = np.einsum("nkc,okc->no", x[:, i:i + k, :], w)
    return out


def np_conv2d(x, w):
    """NHWC valid conv with OHWI weights."""
    n, h, wd, _ = x.shape
    co, kh, kw, _ = w.shape
    out = np.zeros((n, h - kh + 1, wd - kw + 1, co))
    for i in range(h - kh + 1):
        for j in range(wd - kw + 1):
            out[:, i, j, :] = np.einsum("nhwc,ohwc->no", x[:, i:i + kh, j:j + kw, :], w)
    return out


def np_sdpa(q, k, v, mask, scale):
    scores = np.einsum("bhqd,bhkd->bhqk", q, k) * scale + mask
    return np.einsum("bhqk,bhkd->bhqd", np_softmax(scores, -1), v)


def np_layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def reference(cls, args, arrays):
    """What case ``args`` of family ``cls`` must compute from ``arrays``."""
    a = [np.asarray(x, dtype=np.float64) if x.dtype.kind == "f" else x for x in arrays]
    name = cls.__name__
    if name == "Argmax":
        return np.argmax(a[0], axis=args[1])
    if name == "BCE":
        p, t = a
        return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    if name == "Concat":
        return np.concatenate(a[:2], axis=args[2])
    if name == "Conv1d":
        return np_conv1d(*a)
    if name == "Conv2d":
        return np_conv2d(*a)
    if name == "Gather":
        return a[0][a[1]]
    if name == "Scatter":
        x, idx, v = a
        out = x.copy()
        out[idx] = v  # duplicates carry identical rows: order does not matter
        return out
    if name == "ScatterSum":
        x, idx, v = a
        out = x.copy()
        np.add.at(out, idx, v)
        return out
    if name == "ScatterMax":
        x, idx, v = a
        out = x.copy()
        np.maximum.at(out, idx, v)
        return out
    if name == "LayerNorm":
        return np_layer_norm(*a, cls.eps)
    if name == "Linear":
        x, w, b = a
        return x @ w + b
    if name == "MatMul":
        return np.matmul(*a)
    if name == "ScaledDotProductAttention":
        q, k, v, mask = a
        return np_sdpa(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]))
    if name == "LeakyReLU":
        return np.where(a[0] > 0, a[0], cls.negative_slope * a[0])
    if name == "PReLU":
        x, alpha = a
        return np.maximum(x, 0) + alpha * np.minimum(x, 0)
    if name == "ReLU":
        return np.maximum(a[0], 0)
    if name == "SeLU":
        alpha, scale = 1.6732632423543772, 1.0507009873554805
        return scale * np.where(a[0] > 0, a[0], alpha * np.expm1(a[0]))
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-a[0]))
    if name == "Softmax":
        return np_softmax(a[0], args[1])
    if name == "Softplus":
        return np.logaddexp(a[0], 0)
    if name == "Sort":
        return np.sort(a[0], axis=args[1])
    if name == "Sum":
        return a[0].sum(axis=args[1])
    if name == "SumAll":
        return a[0].sum()
    raise KeyError(name)


# --------------------------------------------------------------------------
# asv's view of the module
# --------------------------------------------------------------------------


def test_asv_sees_23_classes_and_91_cases():
    classes = benchmark_classes()
    # No public benchmark class without cases (asv would collect it too).
    assert all(cls.cases for cls in classes.values()), [n for n, c in classes.items() if not c.cases]
    assert set(classes) == set(FAMILIES) | {"Compile"}
    assert {name: len(cls.cases) for name, cls in FAMILIES.items()} == EXPECTED_COUNTS
    assert len(FAMILIES) == 23
    assert sum(len(cls.cases) for cls in FAMILIES.values()) == 91
    for cls in FAMILIES.values():
        assert cls.params == [[c.label for c in cls.cases], list(common.BACKENDS)]
        assert cls.param_names == ["case", "backend"]
    assert ops.Compile.params == [[c.label for c in ops.Compile.cases], ["mlx_cpu", "mlx_gpu"]]


def test_asv_runner_discovers_the_same_benchmarks():
    """asv_runner's own discovery, run on this module alone."""
    discovery = pytest.importorskip("asv_runner.discovery")
    names, benches = {}, {}
    for name, obj in vars(ops).items():
        if name.startswith("_") or not inspect.isclass(obj) or inspect.isabstract(obj):
            continue
        for attr_name, attr in inspect.getmembers(obj):
            if inspect.isfunction(attr) or inspect.ismethod(attr):
                bench = discovery._get_benchmark(attr_name, ops, obj, attr)
                if bench is not None:
                    names[bench.name] = len(bench.params[0])
                    benches[name] = bench
    assert names == {f"ops.{n}.time_op": c for n, c in EXPECTED_COUNTS.items()} | {
        "ops.Compile.time_compile": len(ops.Compile.cases)
    }
    track = discovery._get_benchmark("track_mlx_version", ops, None, ops.track_mlx_version)
    assert track.name == "ops.track_mlx_version" and track.unit == "version"
    # asv reads the per-family settings of the slow families
    assert benches["MatMul"].rounds == 1 and benches["MatMul"].number == 1
    assert benches["MatMul"].min_run_count == 1 and benches["MatMul"].repeat == (1, 3, 2.0)
    assert benches["MatMul"].warmup_time == 0  # the build's call is the warm-up
    assert benches["Sum"].rounds == 1 and benches["Sum"].number == 0
    assert benches["ReLU"].rounds == 2 and benches["ReLU"].repeat == 0
    timeouts = {name: b.timeout for name, b in benches.items()}
    assert timeouts.pop("MatMul") == 900 and timeouts.pop("Linear") == 600
    assert set(timeouts.values()) == {300}


def test_labels_read_like_the_seed_rows():
    for name, cls in FAMILIES.items():
        for case in cls.cases:
            assert "axi=" not in case.label
            assert case.label.startswith("dim=")
            for full, small in zip(case.args, case.small):
                if isinstance(full, tuple):
                    assert len(full) == len(small), f"{name} {case.label}: small is not same-rank"
    assert ops.Argmax.case("dim=64x1024x128 axis=0").args == ((64, 1024, 128), 0)
    assert ops.Linear.case("dim=100x1024x32 dim=32x1024 dim=1024")
    assert ops.PReLU.case("dim=128x16x1024 dim=1")
    assert ops.ScatterSum.case("dim=1024x32 dim=1000000").args == ((1024, 32), 1000000)


# --------------------------------------------------------------------------
# Parity, every case (small sizes)
# --------------------------------------------------------------------------


@needs_both
@pytest.mark.parametrize("cls, label", ALL_CASES)
def test_parity(cls, label):
    case = cls.case(label)
    ref = reference(cls, case.small, inputs_of(cls, label))
    t = in_mlx_layout(cls, run_case(cls, label, "torch_cpu"))
    assert_close(t, ref, cls, "torch vs numpy")
    m = run_case(cls, label, "mlx_cpu")  # skips where a version gate says so
    assert_close(m, t, cls, "mlx vs torch")
    assert_close(m, ref, cls, "mlx vs numpy")


@needs_both
@pytest.mark.parametrize("cls, label", ALL_CASES)
def test_compiled_path_matches(cls, label):
    """What mlx_gpu_compile times (Backend.timed with mx.compile), run on the
    CPU since this machine has no GPU: the ops are compile-friendly and give
    the uncompiled result."""
    be = Backend("mlx_cpu")
    be.compiled = True
    case = cls.case(label)
    eager = run_case(cls, label, "mlx_cpu")
    fn = cls().build(be, case.small, key_of(cls, label))
    assert_close(be.to_numpy(fn()), eager, cls, "compiled vs eager")


MATMUL_FAMILIES = (ops.MatMul, ops.Linear, ops.Conv1d, ops.Conv2d, ops.ScaledDotProductAttention)


@needs_both
@pytest.mark.parametrize("be_name", gpu.GPU_BACKENDS)
@pytest.mark.parametrize("cls, label", ALL_CASES)
def test_gpu_parity(cls, label, be_name):
    """The callable each GPU backend times, against the float64 NumPy
    reference. Skipped without a GPU; run on the lent NVIDIA machine. Under
    MLX's TF32 (gpu.mlx_tf32) the matmul families are held to
    gpu.TF32_RELATIVE of the largest reference value instead of the family's
    float32 tolerance."""
    gpu.require(be_name)
    case = cls.case(label)
    ref = reference(cls, case.small, inputs_of(cls, label))
    got = run_case(cls, label, be_name)
    if be_name.startswith("torch"):
        got = in_mlx_layout(cls, got)
    if cls in MATMUL_FAMILIES and gpu.mlx_tf32(be_name):
        gpu.assert_within_tf32(got, ref, be_name)
    else:
        assert_close(got, ref, cls, f"{be_name} vs numpy")


def test_tf32_tolerance(monkeypatch):
    """The GPU parity rule itself, here on the CPU: TF32-sized errors pass,
    a wrong result fails, and MLX_ENABLE_TF32=0 restores the strict rule."""
    want = common.normal(("tf32-test",), (64, 64)).astype(np.float64)
    rounded = want * (1 + 2.0 ** -11)  # one TF32 rounding of every value
    gpu.assert_within_tf32(rounded, want, "mlx_gpu")
    with pytest.raises(AssertionError):
        gpu.assert_within_tf32(want + 0.1 * np.abs(want).max(), want, "mlx_gpu")
    with pytest.raises(AssertionError):
        gpu.assert_within_tf32(want.T, want, "mlx_gpu")
    monkeypatch.delenv(gpu.TF32_ENV, raising=False)
    assert gpu.mlx_tf32("mlx_gpu") and gpu.mlx_tf32("mlx_gpu_compile")
    assert not gpu.mlx_tf32("torch_cuda") and not gpu.mlx_tf32("mlx_cpu")
    monkeypatch.setenv(gpu.TF32_ENV, "0")
    assert not gpu.mlx_tf32("mlx_gpu")


def test_gpu_backends_skip_here():
    for name in ("mlx_gpu", "mlx_gpu_compile"):
        if common.unavailable_reason(name) is None:
            pytest.skip("this machine has an MLX GPU")
        with pytest.raises(NotImplementedError):
            ops.Sum.callable("dim=64x128x128x128 axis=0", name, small=True)


# --------------------------------------------------------------------------
# The axis reaches MLX (Argmax, Sum, Softmax, Sort)
# --------------------------------------------------------------------------

AXIS_FAMILIES = {
    ops.Argmax: lambda x, axis: np.argmax(x, axis=axis),
    ops.Sum: lambda x, axis: x.sum(axis=axis),
    ops.Softmax: np_softmax,
    ops.Sort: lambda x, axis: np.sort(x, axis=axis),
}


@needs_both
@pytest.mark.parametrize("cls", list(AXIS_FAMILIES), ids=lambda c: c.__name__)
def test_axis_is_passed(cls):
    x = common.normal(("axis-test", cls.__name__), (4, 5, 6))
    results = {}
    for axis in (0, 1, 2, -1):
        args = ((4, 5, 6), axis)
        m = MLX.to_numpy(cls().mlx_op(args)(mx.array(x)))
        t = TORCH.to_numpy(cls().torch_op(args)(torch.from_numpy(x)))
        want = AXIS_FAMILIES[cls](x.astype(np.float64), axis)
        assert_close(m, want, cls, f"mlx axis={axis}")
        assert_close(t, want, cls, f"torch axis={axis}")
        results[axis] = m
    # Different axes give different results (shape for reductions, values
    # for softmax and sort), so a dropped axis could not pass.
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        assert results[a].shape != results[b].shape or not np.allclose(results[a], results[b])
    np.testing.assert_array_equal(results[2], results[-1])


def test_axis_cases_cover_every_seed_axis():
    assert [c.args[1] for c in ops.Argmax.cases] == [0, 1, 2, 2]
    assert [c.args[1] for c in ops.Sum.cases] == [0, 1, 2, 3]
    assert [c.args[1] for c in ops.Sort.cases] == [0, 1, 2]
    assert {c.args[1] for c in ops.Softmax.cases} == {-1}


# --------------------------------------------------------------------------
# Scatter family
# --------------------------------------------------------------------------

REDUCE_FAMILIES = [ops.ScatterSum, ops.ScatterMax]


@needs_both
@pytest.mark.parametrize("cls", REDUCE_FAMILIES, ids=lambda c: c.__name__)
def test_scatter_reduce_returns_the_at_result_and_leaves_x(cls):
    label = "dim=64x16 dim=1000"
    x, idx, v = inputs_of(cls, label)
    fn = cls.callable(label, "mlx_cpu", small=True)
    out = MLX.to_numpy(fn())
    ref = reference(cls, cls.case(label).small, [x, idx, v])
    assert_close(out, ref, cls, "mlx .at result")
    assert not np.allclose(out, x), "the op returned its input, not the scatter"
    # .at is out of place: a second call gives the same (x was not updated).
    assert_close(MLX.to_numpy(fn()), ref, cls, "second call")


@needs_both
@pytest.mark.parametrize("cls", REDUCE_FAMILIES, ids=lambda c: c.__name__)
def test_torch_scatter_reduce_covers_every_column(cls):
    for case in cls.cases:
        x, idx, v = inputs_of(cls, case.label)
        t = run_case(cls, case.label, "torch_cpu")
        hit = np.unique(idx)
        missed = np.setdiff1d(np.arange(x.shape[0]), hit)
        assert x.shape[1] > 1
        (nodes, _), edges = case.small
        want = reference(cls, case.small, [x, idx, v])
        for col in range(x.shape[1]):
            # every feature column is reduced ...
            assert_close(t[:, col], want[:, col], cls, f"{case.label}: column {col}")
            if edges > nodes:  # rows hit many times: certainly changed
                assert not np.allclose(t[hit, col], x[hit, col]), (case.label, col)
        # ... and rows no index hits keep x (include_self=True, like MLX's .at)
        np.testing.assert_array_equal(t[missed], x[missed])


def test_scatter_reduce_duplicates_accumulate():
    """Duplicate indices: all updates count (sum) / the largest wins (max),
    together with x's own row, in both frameworks."""
    x = np.array([[1.0, -1.0], [0.0, 0.0], [5.0, 5.0]], np.float32)
    idx = np.array([0, 0, 2, 0], np.int32)
    v = np.array([[1.0, 2.0], [3.0, -4.0], [1.0, 9.0], [0.5, 0.5]], np.float32)
    want_sum = np.array([[5.5, -2.5], [0.0, 0.0], [6.0, 14.0]], np.float32)
    want_max = np.array([[3.0, 2.0], [0.0, 0.0], [5.0, 9.0]], np.float32)
    for cls, want in [(ops.ScatterSum, want_sum), (ops.ScatterMax, want_max)]:
        if mx is not None:
            got = MLX.to_numpy(cls().mlx_op(None)(mx.array(x), mx.array(idx), mx.array(v)))
            np.testing.assert_array_equal(got, want)
        if torch is not None:
            tx, ti, tv = TORCH.arrays(cls().torch_layout([x, idx, v], None))
            got = TORCH.to_numpy(cls().torch_op(None)(*cls().torch_prepare([tx, ti, tv], None)))
            np.testing.assert_array_equal(got, want)


def test_scatter_assignment_is_deterministic():
    """Scatter: unique indices where edges <= nodes; where there are more
    edges than nodes, every write to a row carries the same values."""
    for case in ops.Scatter.cases:
        for small in (True, False):
            args = case.small if small else case.args
            (nodes, _), edges = args
            if not small and edges > 1000:
                idx = ops.Scatter.indices(key_of(ops.Scatter, case.label, False), nodes, edges)
                assert idx.shape == (edges,) and idx.min() >= 0 and idx.max() < nodes
                # each block of `nodes` consecutive indices is a permutation
                full = idx[: (edges // nodes) * nodes].reshape(-1, nodes)
                assert (np.sort(full, axis=1) == np.arange(nodes)).all()
                continue
            x, idx, v = ops.Scatter().inputs(args, key_of(ops.Scatter, case.label, small))
            if edges <= nodes:
                assert len(np.unique(idx)) == edges, case.label
            else:
                assert len(np.unique(idx)) == nodes, case.label
            for row in np.unique(idx):
                rows = v[idx == row]
                assert (rows == rows[0]).all(), (case.label, row)


@needs_both
def test_scatter_does_not_modify_its_input():
    """MLX ``a[idx] = v`` rebinds the array object it is called on; the op
    assigns into a new handle, so the cached input stays x (and each timed
    call does the same work)."""
    label = "dim=64x16 dim=10"
    x, idx, v = inputs_of(ops.Scatter, label)
    xs = [mx.array(x), mx.array(idx), mx.array(v)]
    out = ops.Scatter().mlx_op(None)(*xs)
    mx.eval(out)
    np.testing.assert_array_equal(np.array(xs[0]), x)
    assert not np.array_equal(np.array(out), x)
    tx = torch.from_numpy(x.copy())
    ops.Scatter().torch_op(None)(tx, torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(v))
    np.testing.assert_array_equal(tx.numpy(), x)


# --------------------------------------------------------------------------
# The timed MLX callable evaluates what the op returns
# --------------------------------------------------------------------------


def _median_time(fn, calls=15):
    return statistics.median(call_seconds(fn, samples=calls, warmup=1))


@pytest.mark.skipif(mx is None, reason="needs MLX")
@pytest.mark.parametrize("cls", [ops.ScatterSum, ops.ScatterMax, ops.Scatter], ids=lambda c: c.__name__)
def test_timed_scatter_cost_grows_with_indices(cls):
    """An unevaluated MLX graph costs the same whatever its size; an
    evaluated scatter of 10x more updates costs several times more. A
    relative check within one process, not a wall-clock bound."""
    be = Backend("mlx_cpu")
    few = cls().build(be, ((64, 16), 20000), ("timing-test", cls.__name__, "few"))
    many = cls().build(be, ((64, 16), 200000), ("timing-test", cls.__name__, "many"))
    t_few, t_many = _median_time(few), _median_time(many)
    assert t_many >= 2 * t_few, (t_few, t_many)


@pytest.mark.skipif(mx is None, reason="needs MLX")
def test_timed_callable_returns_the_scatter_result():
    """The callable returns what the op returns (the ``.at`` result, which
    Backend.timed evaluated), not the op's input."""
    label = "dim=64x16 dim=1000000"
    fn = ops.ScatterSum.callable(label, "mlx_cpu", small=True)
    out = fn()
    assert isinstance(out, mx.array)
    x, idx, v = inputs_of(ops.ScatterSum, label)
    assert_close(np.array(out), reference(ops.ScatterSum, None, [x, idx, v]), ops.ScatterSum, "value")


# --------------------------------------------------------------------------
# Slow cases are timed warm: the callable is called once when it is built
# --------------------------------------------------------------------------

SLOW_FAMILIES = {name: cls for name, cls in FAMILIES.items() if issubclass(cls, ops._Slow)}


def test_the_slow_families():
    assert set(SLOW_FAMILIES) == {
        "Concat", "Conv1d", "Conv2d", "Linear", "MatMul", "ScaledDotProductAttention", "Softmax", "Sort",
    }


@needs_both
@pytest.mark.parametrize("be_name", ["mlx_cpu", "torch_cpu"])
@pytest.mark.parametrize("cls", list(FAMILIES.values()), ids=lambda c: c.__name__)
def test_first_timed_call_is_not_the_first_call(monkeypatch, cls, be_name):
    """asv's first sample of a ``_Slow`` case can be its only one (a call
    longer than the warm-up budget): the op has run once already, when the
    cached callable was built (what ``setup`` gets), outside the timed region."""
    calls = []
    hook = "mlx_op" if be_name.startswith("mlx") else "torch_op"
    real = getattr(cls, hook)

    def counted(self, args):
        op = real(self, args)

        def call(*arrays):
            calls.append(len(arrays))
            return op(*arrays)

        return call

    monkeypatch.setattr(cls, hook, counted)
    common.CACHE.clear()
    label = cls.cases[0].label
    fn = cls.callable(label, be_name, small=True)  # the cached build setup uses
    assert len(calls) == 1, "the build did not warm the callable up"
    assert cls.callable(label, be_name, small=True) is fn  # cached: no second warm-up
    fn()  # asv's first timed call
    assert len(calls) == 2
    common.CACHE.clear()


# --------------------------------------------------------------------------
# Compile: mx.compile itself
# --------------------------------------------------------------------------

COMPILE_CASES = [c.label for c in ops.Compile.cases]


@pytest.mark.skipif(mx is None, reason="needs MLX")
@pytest.mark.parametrize("label", COMPILE_CASES)
def test_compiled_function_returns_what_the_uncompiled_one_does(label):
    case = ops.Compile.case(label)
    fn = ops.Compile.callable(label, "mlx_cpu", small=True)
    got = np.array(fn())
    arrays = MLX.arrays(ops.Compile.inputs(case.small, key_of(ops.Compile, label)))
    want = ops.Compile.function(case.small)(*arrays)
    mx.eval(want)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got, np.array(want), rtol=ops.Compile.rtol, atol=ops.Compile.atol)
    common.CACHE.clear()


@pytest.mark.skipif(mx is None, reason="needs MLX")
@pytest.mark.parametrize("label", COMPILE_CASES)
def test_compile_timed_call_compiles_afresh_and_evaluates(monkeypatch, label):
    """Each timed call compiles a new function object (MLX caches compiled
    functions per object, so reusing one would time a warm call) and
    evaluates the compiled function's result."""
    common.CACHE.clear()
    fn = ops.Compile.callable(label, "mlx_cpu", small=True)
    compiled, evaluated = [], []
    real_compile, real_eval = mx.compile, mx.eval

    def counting_compile(f, *args, **kwargs):
        compiled.append(f)
        out = real_compile(f, *args, **kwargs)

        def call(*a):
            result = out(*a)
            compiled.append(result)
            return result

        return call

    monkeypatch.setattr(mx, "compile", counting_compile)
    monkeypatch.setattr(mx, "eval", lambda *a: (evaluated.append(a), real_eval(*a))[1])
    first = fn()
    second = fn()
    functions, results = compiled[0::2], compiled[1::2]
    assert len(functions) == 2 and functions[0] is not functions[1]
    assert results[0] is first and results[1] is second
    assert len(evaluated) == 2 and evaluated[0][0] is first and evaluated[1][0] is second
    common.CACHE.clear()


# --------------------------------------------------------------------------
# BCE, SDPA mask, conv layouts, Linear, LayerNorm
# --------------------------------------------------------------------------


def test_bce_inputs_are_probabilities_and_binary_targets():
    for case in ops.BCE.cases:
        p, t = inputs_of(ops.BCE, case.label)
        assert p.dtype == t.dtype == np.float32
        assert (p > 0).all() and (p < 1).all()
        assert set(np.unique(t)) <= {0.0, 1.0} and len(np.unique(t)) == 2


@needs_both
def test_bce_same_loss_in_both_frameworks():
    label = "dim=100000x32 dim=100000x32"
    p, t = inputs_of(ops.BCE, label)
    want = reference(ops.BCE, None, [p, t])
    m = run_case(ops.BCE, label, "mlx_cpu")
    tt = run_case(ops.BCE, label, "torch_cpu")
    assert m.shape == tt.shape == ()
    assert abs(float(m) - want) < 1e-5 and abs(float(tt) - want) < 1e-5
    # Not the logits formula the original code fed torch's probabilities to:
    logits_loss = np.mean(np.logaddexp(0, p.astype(np.float64)) - p * t)
    assert abs(logits_loss - want) > 0.1


def test_sdpa_mask_is_additive_causal():
    mask = ops.ScaledDotProductAttention.causal_mask(4, 6)
    assert mask.dtype == np.float32
    for i in range(4):
        for j in range(6):
            assert mask[i, j] == (0.0 if j <= i else -np.inf)
    for case in ops.ScaledDotProductAttention.cases:
        q, k, v, m = inputs_of(ops.ScaledDotProductAttention, case.label)
        assert m.shape == (q.shape[2], k.shape[2])
        assert np.isfinite(m[:, 0]).all()  # no fully masked row


@needs_both
def test_sdpa_mask_changes_the_result():
    label = "dim=64x16x16x1024 dim=64x16x64x1024 dim=64x16x64x1024"
    q, k, v, mask = inputs_of(ops.ScaledDotProductAttention, label)
    scale = 1.0 / math.sqrt(q.shape[-1])
    unmasked = np_sdpa(q.astype(np.float64), k, v, np.zeros_like(mask), scale)
    ones = np_sdpa(q.astype(np.float64), k, v, np.ones_like(mask), scale)  # the original's mask
    masked = np_sdpa(q.astype(np.float64), k, v, mask, scale)
    assert not np.allclose(masked, unmasked, atol=1e-3)
    # torch and MLX got the same float mask
    t = run_case(ops.ScaledDotProductAttention, label, "torch_cpu")
    np.testing.assert_allclose(t, masked, rtol=1e-4, atol=1e-5)
    got = run_case(ops.ScaledDotProductAttention, label, "mlx_cpu")
    np.testing.assert_allclose(got, masked, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, unmasked, atol=1e-3)
    assert not np.allclose(got, ones, atol=1e-3)


def test_conv_torch_gets_the_same_data_channels_first():
    for cls, perm in [(ops.Conv1d, (0, 2, 1)), (ops.Conv2d, (0, 3, 1, 2))]:
        for case in cls.cases:
            x, w = inputs_of(cls, case.label)
            tx, tw = cls().torch_layout([x, w], case.small)
            np.testing.assert_array_equal(tx, x.transpose(perm))
            np.testing.assert_array_equal(tw, w.transpose(perm))
            # MLX layout: weight (C_out, ..., C_in) with C_in == x's last axis
            assert w.shape[-1] == x.shape[-1]
            assert tw.shape[1] == tx.shape[1]  # torch: C_in at axis 1 of both


@needs_both
def test_conv_outputs_agree_after_transposing_torch():
    for cls in (ops.Conv1d, ops.Conv2d):
        label = cls.cases[0].label
        m = run_case(cls, label, "mlx_cpu")
        t = run_case(cls, label, "torch_cpu")
        assert t.shape[1] == m.shape[-1]  # torch channels-first, MLX channels-last
        assert_close(m, in_mlx_layout(cls, t), cls, "conv")


@needs_both
def test_linear_uses_the_same_weights_and_bias():
    label = "dim=100x1024x64 dim=64x1024 dim=1024"
    x, w, b = inputs_of(ops.Linear, label)
    assert w.shape[0] == x.shape[-1] and b.shape == (w.shape[1],)
    _, w_t, b_t = ops.Linear().torch_layout([x, w, b], None)
    np.testing.assert_array_equal(w_t, w.T)
    want = x.astype(np.float64) @ w + b
    assert_close(run_case(ops.Linear, label, "mlx_cpu"), want, ops.Linear, "mlx")
    assert_close(run_case(ops.Linear, label, "torch_cpu"), want, ops.Linear, "torch")
    # the bias is really added
    assert not np.allclose(want, x.astype(np.float64) @ w, atol=1e-3)


@needs_both
def test_layer_norm_uses_weight_bias_and_eps():
    label = "dim=64x128x1024"
    x, w, b = inputs_of(ops.LayerNorm, label)
    assert not np.allclose(w, 1) and not np.allclose(b, 0)
    want = np_layer_norm(x.astype(np.float64), w, b, ops.LayerNorm.eps)
    assert_close(run_case(ops.LayerNorm, label, "mlx_cpu"), want, ops.LayerNorm, "mlx")
    assert_close(run_case(ops.LayerNorm, label, "torch_cpu"), want, ops.LayerNorm, "torch")


# --------------------------------------------------------------------------
# Version gates (simulated older MLX on the installed one)
# --------------------------------------------------------------------------


@pytest.fixture
def old_mlx(monkeypatch):
    def pretend(version):
        parsed = common.parse_version(version)
        monkeypatch.setattr(common, "mlx_version", lambda: parsed)
        monkeypatch.setattr(ops, "mlx_version", lambda: parsed)

    return pretend


@pytest.mark.skipif(mx is None, reason="needs MLX")
def test_gates_on_mlx_0_2_0(old_mlx):
    old_mlx("0.2.0")
    with pytest.raises(NotImplementedError, match=r"scaled_dot_product_attention needs MLX >= 0.6.0"):
        ops.ScaledDotProductAttention().mlx_op(ops.ScaledDotProductAttention.cases[0].small)
    # LayerNorm falls back to the expression of that release's nn.LayerNorm,
    # Sigmoid to mx.sigmoid; both still compute the same thing.
    for cls in (ops.LayerNorm, ops.Sigmoid):
        case = cls.cases[0]
        arrays = inputs_of(cls, case.label)
        got = np.array(cls().mlx_op(case.small)(*[mx.array(a) for a in arrays]))
        assert_close(got, reference(cls, case.small, arrays), cls, "fallback")
    # everything else builds its op
    for name, cls in FAMILIES.items():
        if cls is not ops.ScaledDotProductAttention:
            assert callable(cls().mlx_op(cls.cases[0].small)), name


@pytest.mark.skipif(mx is None, reason="needs MLX")
def test_no_gate_skips_on_the_installed_mlx():
    if common.mlx_version() < (0, 8, 0):
        pytest.skip("older MLX: SDPA is expected to skip")
    for cls in FAMILIES.values():
        for case in cls.cases:
            assert callable(cls().mlx_op(case.small))


def test_torch_backends_do_not_depend_on_mlx_gates(old_mlx):
    """On an MLX too old for SDPA the torch side of the case still runs."""
    if torch is None:
        pytest.skip("needs torch")
    old_mlx("0.2.0")
    cls = ops.ScaledDotProductAttention
    assert callable(cls().torch_op(cls.cases[0].small))


# --------------------------------------------------------------------------
# A few cases at the seed's shapes (each well under 2 s here)
# --------------------------------------------------------------------------

SEED_SIZED = [
    (ops.Argmax, "dim=64x1024x128 axis=1"),
    (ops.BCE, "dim=1000000 dim=1000000"),
    (ops.Conv1d, "dim=16x1000x3 dim=128x11x3"),
    (ops.Gather, "dim=1024x32 dim=1000"),
    (ops.Scatter, "dim=1024x32 dim=1000000"),
    (ops.ScatterSum, "dim=1024x32 dim=1000000"),
    (ops.ScatterMax, "dim=64x16 dim=1000000"),
    (ops.LayerNorm, "dim=64x128x1024"),
    (ops.Linear, "dim=100x1x51200 dim=51200x1 dim=1"),
    (ops.MatMul, "dim=32x1x1000 dim=32x1000x128"),
    (ops.ScaledDotProductAttention, "dim=64x8x16x1024 dim=64x8x16x1024 dim=64x8x16x1024"),
    (ops.Sort, "dim=64x128x1024 axis=2"),
]
# Looser than the small-size tolerances where seed sizes add up many more
# float32 terms in different orders.
SEED_TOLERANCES = {
    ops.ScatterSum: (1e-3, 1e-3),  # ~1000 additions per element
    ops.Linear: (1e-3, 5e-3),  # float32 dot products of 51200 terms (sums ~±500)
}


@needs_both
@pytest.mark.parametrize("cls, label", SEED_SIZED, ids=lambda p: getattr(p, "__name__", p))
def test_seed_sized_parity(cls, label):
    try:
        tol = type("Tol", (), {"rtol": cls.rtol, "atol": cls.atol})
        if cls in SEED_TOLERANCES:
            tol.rtol, tol.atol = SEED_TOLERANCES[cls]
        t = in_mlx_layout(cls, run_case(cls, label, "torch_cpu", small=False))
        m = run_case(cls, label, "mlx_cpu", small=False)
        assert_close(m, t, tol, "seed-sized mlx vs torch")
        if cls is not ops.Argmax:  # argmax ties aside, the check above is exact
            ref = reference(cls, cls.case(label).args, inputs_of(cls, label, small=False))
            assert_close(m, ref, tol, "seed-sized mlx vs numpy")
    finally:
        common.CACHE.clear()
