"""The shared benchmark layer: backends, inputs, evaluation, caching, version gates."""

import numpy as np
import pytest

from benchmarks import common
from benchmarks.common import BACKENDS, Case, CaseTable

mx = pytest.importorskip("mlx.core")
torch = pytest.importorskip("torch")


def test_backend_names():
    assert BACKENDS == ("mlx_cpu", "mlx_gpu", "mlx_gpu_compile", "torch_cpu", "torch_cuda", "torch_mps")


def test_cpu_backends_run_here_and_missing_ones_skip():
    assert common.unavailable_reason("mlx_cpu") is None
    assert common.unavailable_reason("torch_cpu") is None
    for name in BACKENDS:
        reason = common.unavailable_reason(name)
        if reason is None:
            assert isinstance(common.backend(name), common.Backend)
        else:
            # asv shows NotImplementedError from setup as "skipped", not failed
            with pytest.raises(NotImplementedError, match=name):
                common.backend(name)


def test_gpu_backends_follow_the_devices():
    has_mlx_gpu = common.mlx_gpu_kind() is not None
    assert (common.unavailable_reason("mlx_gpu") is None) == has_mlx_gpu
    assert (common.unavailable_reason("torch_cuda") is None) == torch.cuda.is_available()


def test_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="unknown backend 'jax_cpu'"):
        common.unavailable_reason("jax_cpu")


def test_backend_selection_by_environment(monkeypatch):
    monkeypatch.setenv(common.SELECTED_ENV, "torch_cpu")
    assert common.unavailable_reason("torch_cpu") is None
    assert "not selected" in common.unavailable_reason("mlx_cpu")


def test_inputs_are_deterministic_and_keyed():
    a = common.normal(("k", 1), (3, 4))
    assert a.dtype == np.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a, common.normal(("k", 1), (3, 4)))
    assert not np.array_equal(a, common.normal(("k", 2), (3, 4)))
    i = common.integers("idx", (100,), 7)
    assert i.min() >= 0 and i.max() < 7 and i.dtype == np.int32


def test_same_data_reaches_both_frameworks():
    x = common.normal("same", (5, 6))
    m = common.Backend("mlx_cpu").array(x)
    t = common.Backend("torch_cpu").array(x)
    np.testing.assert_array_equal(np.array(m), x)
    np.testing.assert_array_equal(t.numpy(), x)


def test_mlx_timed_callable_evaluates_its_result(monkeypatch):
    be = common.Backend("mlx_cpu")
    evaluated = []
    real_eval = mx.eval
    monkeypatch.setattr(mx, "eval", lambda *a: (evaluated.append(a), real_eval(*a))[1])
    x = be.array(np.ones((4, 4), np.float32))
    fn = be.timed(lambda a: a * 3 + 1, x)
    out = fn()
    # the *result* was passed to mx.eval, inside the callable
    assert len(evaluated) == 1 and evaluated[0][0] is out
    np.testing.assert_array_equal(np.array(out), np.full((4, 4), 4, np.float32))


def test_torch_timed_callable_synchronizes(monkeypatch):
    be = common.Backend("torch_cpu")
    synced = []
    monkeypatch.setattr(be, "synchronize", lambda: synced.append(True))
    fn = be.timed(lambda a: a + 1, be.array(np.zeros(3, np.float32)))
    assert fn().tolist() == [1, 1, 1] and synced == [True]


def test_state_cache_builds_once_per_key_and_is_bounded():
    cache = common.StateCache(max_entries=2)
    calls = []

    def factory(k):
        return lambda: calls.append(k) or k

    assert cache.get("a", factory("a")) == "a"
    assert cache.get("a", factory("a")) == "a"
    assert calls == ["a"]
    cache.get("b", factory("b"))
    cache.get("c", factory("c"))
    assert len(cache) == 2
    cache.get("a", factory("a"))  # evicted, built again
    assert calls == ["a", "b", "c", "a"]


def test_version_gates(monkeypatch):
    assert common.parse_version("0.26.1") == (0, 26, 1)
    assert common.parse_version("0.32.4.dev20250101+abc") == (0, 32, 4)
    common.require_mlx("0.0.1", "anything")
    monkeypatch.setattr(mx, "__version__", "0.21.1")
    with pytest.raises(NotImplementedError, match=r"mx.fast.foo needs MLX >= 0.25.0; this is 0.21.1"):
        common.require_mlx("0.25.0", "mx.fast.foo")


class Doubling(CaseTable):
    cases = (Case("dim=3", (3,), (2,)), Case("dim=5", (5,), (2,)))
    builds = 0

    def build(self, backend, args, key):
        type(self).builds += 1
        x = backend.array(common.normal(key, args))
        return backend.timed(lambda a: a * 2, x)

    def time_it(self, case, backend):
        self.fn()


def test_case_table_params_and_setup_reuses_state():
    assert Doubling.params == [["dim=3", "dim=5"], list(BACKENDS)]
    assert Doubling.param_names == ["case", "backend"]
    bench = Doubling()
    bench.setup("dim=5", "mlx_cpu")
    first = bench.fn
    built = Doubling.builds
    for _ in range(3):  # asv_runner calls setup before every sample
        bench.setup("dim=5", "mlx_cpu")
    assert bench.fn is first and Doubling.builds == built
    assert np.array(bench.fn()).shape == (5,)
    small = Doubling.callable("dim=5", "torch_cpu", small=True)
    assert tuple(small().shape) == (2,)


def test_case_table_skips_missing_backend():
    missing = [b for b in BACKENDS if common.unavailable_reason(b)]
    if not missing:
        pytest.skip("every backend is available here")
    with pytest.raises(NotImplementedError):
        Doubling().setup("dim=3", missing[0])


def test_abstract_bases_are_not_benchmarks():
    import inspect

    assert inspect.isabstract(CaseTable)
    from benchmarks import ops

    assert inspect.isabstract(ops.OpFamily)
