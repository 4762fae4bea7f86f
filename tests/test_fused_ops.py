"""Tests of benchmarks/fused_ops.py: MLX's fused ops against torch.

The timed callables of each case, on small inputs, against torch on the CPU
(the same callables asv times), and the AdamW step against torch's.
"""

from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

from benchmarks import fused_ops as fo  # noqa: E402
from benchmarks.common import CACHE, backend, torch  # noqa: E402

needs_torch = pytest.mark.skipif(torch() is None, reason="PyTorch is not installed")


def to_numpy(value):
    """MLX array / torch tensor (or a list of them) as float64 NumPy."""
    if isinstance(value, (tuple, list)):
        return [to_numpy(v) for v in value]
    if isinstance(value, mx.array):
        return np.array(value.astype(mx.float32)).astype(np.float64)
    return value.detach().float().cpu().numpy().astype(np.float64)


def test_asv_params():
    for cls in fo.FUSED_CLASSES:
        assert cls.params == [[c.label for c in cls.cases], list(fo.FUSED_BACKENDS)]
        assert cls.param_names == ["case", "backend"]
        assert [n for n in dir(cls) if n.startswith("time_")]


@needs_torch
@pytest.mark.parametrize(
    "cls,label", [(cls, c.label) for cls in (fo.RMSNorm, fo.LayerNorm, fo.SoftmaxVocab) for c in cls.cases],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_fused_callables_agree_with_torch(cls, label):
    got = to_numpy(cls.callable(label, "mlx_cpu", small=True)())
    want = to_numpy(cls.callable(label, "torch_cpu", small=True)())
    got = got if isinstance(got, list) else [got]
    want = want if isinstance(want, list) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.allclose(g, w, rtol=cls.rtol, atol=cls.atol)
    CACHE.clear()


@needs_torch
def test_adamw_step_agrees_with_torch():
    case = fo.AdamWStep.cases[0]
    key = ("test_adamw",)
    m_step = fo.AdamWStep().build(backend("mlx_cpu"), case.small, key)  # one step taken
    t_step = fo.AdamWStep().build(backend("torch_cpu"), case.small, key)
    params, state = m_step()  # the second step, with the optimizer state evaluated
    assert "w" in state and "step" in state  # the optimizer state was returned (and evaluated)
    p = t_step()
    assert np.allclose(to_numpy(params["w"]), to_numpy(p), rtol=1e-5, atol=1e-6)
    # the step really moved the parameters, by about 2 * lr
    p0 = fo.normal(key + ("p",), case.small)
    assert 1e-4 < np.abs(to_numpy(p) - p0).max() < 1e-2


ERRORS = (AttributeError, TypeError, ValueError, RuntimeError)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
@pytest.mark.parametrize(
    "cls,label,target",
    [
        (fo.RMSNorm, fo.RMSNorm.cases[0].label, "rms_norm"),  # fwd
        (fo.RMSNorm, fo.RMSNorm.cases[1].label, "rms_norm"),  # fwd+bwd
        (fo.LayerNorm, fo.LayerNorm.cases[0].label, "layer_norm"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_an_error_from_mlx_is_a_failure_not_a_skip(monkeypatch, cls, label, target, error):
    """An error raised by MLX's function surfaces as that error (asv: failed),
    not as the NotImplementedError that asv shows as skipped (n/a)."""

    def broken(*args, **kwargs):
        raise error("injected")

    monkeypatch.setattr(mx.fast, target, broken)
    CACHE.clear()  # build afresh: the callable is called when it is built
    with pytest.raises(error, match="injected") as info:
        cls.callable(label, "mlx_cpu", small=True)
    assert type(info.value) is error
    CACHE.clear()
