"""MLX's fused ops against torch, at the shapes of seed 003 (the metalcore benchmark).

``RMSNorm`` (``mx.fast.rms_norm``, forward and forward+backward),
``LayerNorm`` (``mx.fast.layer_norm``), ``SoftmaxVocab`` (softmax over LLM
vocabularies) and ``AdamWStep`` (one ``mlx.optimizers.AdamW`` step) are
``CaseTable``s over the backends ``mlx_cpu``, ``mlx_gpu``, ``torch_cpu``,
``torch_cuda`` and ``torch_mps`` (no ``mlx_gpu_compile``). ``time_*`` times
one call whose result is evaluated (MLX) or synchronized (torch GPU) inside
the timed callable (``Backend.timed``); every callable is called once when it
is built, outside the timed region.

A backend this machine lacks, or an MLX release without the API a case needs
(an explicit ``require_mlx`` gate), skips the case (``NotImplementedError``,
asv: n/a); any other error, from MLX or torch, fails it.

Until the benchmarks were split, these classes were in ``metal_kernels.py``
(asv ids ``metal_kernels.RMSNorm.time_rms_norm`` ...); they are now
``fused_ops.RMSNorm.time_rms_norm`` and so on.
"""

from __future__ import annotations

import inspect

import numpy as np

from .common import Case, CaseTable, KernelTiming, mlx, normal, require_mlx, shape_label, torch

FUSED_BACKENDS = ("mlx_cpu", "mlx_gpu", "torch_cpu", "torch_cuda", "torch_mps")
EPS = 1e-5


class FusedTable(KernelTiming, CaseTable):
    """A table of fused-op cases timed on every backend of ``FUSED_BACKENDS``."""

    backends = FUSED_BACKENDS
    param_names = ["case", "backend"]
    rtol, atol = 1e-4, 1e-4  # parity tolerances of the tests


def _warm(call):
    """Run a freshly built callable once, outside the timed region, and return it.

    Any error propagates: asv records the case as failed. What a release
    lacks is skipped before this, by an explicit version gate (``require_mlx``),
    never by catching an error (mx.fast.rms_norm / layer_norm and their vjp,
    through the fallback's vjp, are all in MLX >= 0.8.0).
    """
    call()
    return call


class RMSNorm(FusedTable):
    """Times RMS norm, forward or forward+backward (mx.fast.rms_norm / torch F.rms_norm).

    Seed 003 "RMSNorm" (Fwd+Bwd fp32)."""

    cases = tuple(
        Case(f"{shape_label(shape)} {direction}", (shape, direction), (small, direction))
        for shape, small in [
            ((32, 4096), (4, 16)),
            ((1, 4096), (1, 16)),
            ((1024, 1024), (6, 8)),
            ((4096, 4096), (8, 8)),
        ]
        for direction in ("fwd", "fwd+bwd")
    )

    def build(self, be, args, key):
        shape, direction = args
        d = shape[-1]
        x = normal(key + ("x",), shape)
        w = (1.0 + 0.1 * normal(key + ("w",), (d,))).astype(np.float32)
        g = normal(key + ("g",), shape)
        if be.is_mlx:
            # mx.fast.rms_norm and its vjp (Custom::vjp, through the fallback): 0.8.0
            require_mlx("0.8.0", "mx.fast.rms_norm")
            mx = mlx()

            def fwd(x, w):
                return mx.fast.rms_norm(x, w, EPS)

            if direction == "fwd":
                fn = fwd
            else:

                def fn(x, w, g):
                    outs, grads = mx.vjp(fwd, [x, w], [g])
                    return list(outs) + list(grads)

        else:
            F = torch().nn.functional
            if not hasattr(F, "rms_norm"):
                raise NotImplementedError("torch.nn.functional.rms_norm needs torch >= 2.4")

            def fwd(x, w):
                return F.rms_norm(x, (d,), w, EPS)

            if direction == "fwd":
                fn = fwd
            else:

                def fn(x, w, g):
                    y = fwd(x, w)
                    gx, gw = torch().autograd.grad(y, (x, w), g)
                    return [y, gx, gw]

        arrays = be.arrays([x, w, g])
        if not be.is_mlx and direction != "fwd":
            arrays[0].requires_grad_(True)
            arrays[1].requires_grad_(True)
        if direction == "fwd":
            arrays = arrays[:2]
        return _warm(be.timed(fn, *arrays))

    def time_rms_norm(self, case, backend):
        self.fn()


class LayerNorm(FusedTable):
    """Times layer norm, forward (mx.fast.layer_norm / torch F.layer_norm).

    Seed 003 "LayerNorm"."""

    cases = tuple(
        Case(shape_label(shape), (shape,), (small,))
        for shape, small in [
            ((32, 512), (4, 16)),
            ((64, 1024), (4, 17)),
            ((32, 4096), (3, 32)),
            ((32, 5120), (3, 20)),
            ((16, 8192), (2, 64)),
            ((256, 4096), (5, 32)),
            ((1024, 4096), (6, 32)),
        ]
    )

    def build(self, be, args, key):
        (shape,) = args
        d = shape[-1]
        x = normal(key + ("x",), shape)
        w = (1.0 + 0.1 * normal(key + ("w",), (d,))).astype(np.float32)
        b = (0.1 * normal(key + ("b",), (d,))).astype(np.float32)
        if be.is_mlx:
            require_mlx("0.8.0", "mx.fast.layer_norm")
            mx = mlx()

            def fn(x, w, b):
                return mx.fast.layer_norm(x, w, b, EPS)

        else:
            F = torch().nn.functional

            def fn(x, w, b):
                return F.layer_norm(x, (d,), w, b, EPS)

        return _warm(be.timed(fn, *be.arrays([x, w, b])))

    def time_layer_norm(self, case, backend):
        self.fn()


class SoftmaxVocab(FusedTable):
    """Times softmax over LLM vocabulary rows (mx.softmax / torch.softmax).

    Seed 003 "Fused Softmax": its LLM Vocab rows."""

    cases = tuple(
        Case(shape_label(shape), (shape,), (small,))
        for shape, small in [((32, 32000), (4, 320)), ((128, 128000), (3, 1280))]
    )

    def build(self, be, args, key):
        (shape,) = args
        x = normal(key, shape)
        if be.is_mlx:
            mx = mlx()

            def fn(x):
                return mx.softmax(x, axis=-1)

        else:

            def fn(x):
                return torch().softmax(x, dim=-1)

        return _warm(be.timed(fn, *be.arrays([x])))

    def time_softmax(self, case, backend):
        self.fn()


ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


class AdamWStep(FusedTable):
    """Times one AdamW optimizer step on N float32 parameters.

    One AdamW step on N float32 parameters (seed 003 "AdamW": 1M, 10M, 16M).

    Same hyper-parameters on both sides (``ADAMW``); MLX gets
    ``bias_correction=True`` where its AdamW has the flag (MLX >= 0.21.1;
    before that MLX's step lacks torch's bias correction). The MLX step
    evaluates the updated parameters and the whole optimizer state; torch uses
    its default implementation (foreach on CUDA) and synchronizes. One step is
    taken when the case is built, so the timed steps are steady-state.
    """

    cases = tuple(
        Case(label, (n,), (small,))
        for label, n, small in [
            ("N=1048576", 1048576, 1000),
            ("N=10485760", 10485760, 1001),
            ("N=16777216", 16777216, 1002),
        ]
    )

    def build(self, be, args, key):
        (n,) = args
        p0 = normal(key + ("p",), (n,))
        g0 = normal(key + ("g",), (n,))
        if be.is_mlx:
            return self._mlx_step(be, p0, g0)
        return self._torch_step(be, p0, g0)

    @staticmethod
    def mlx_optimizer():
        require_mlx("0.1.0", "mlx.optimizers.AdamW")
        import mlx.optimizers as optim

        kwargs = dict(
            learning_rate=ADAMW["lr"], betas=list(ADAMW["betas"]), eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"]
        )
        if "bias_correction" in inspect.signature(optim.AdamW.__init__).parameters:
            kwargs["bias_correction"] = True
        return optim.AdamW(**kwargs)

    def _mlx_step(self, be, p0, g0):
        mx = mlx()
        opt = self.mlx_optimizer()
        grads = {"w": be.array(g0)}
        state = {"params": {"w": be.array(p0)}}

        def step():
            state["params"] = opt.apply_gradients(grads, state["params"])
            return [state["params"], opt.state]  # Backend.timed: mx.eval of both

        call = be.timed(step)
        call()  # creates the optimizer state
        call.params = state
        call.optimizer = opt
        return call

    def _torch_step(self, be, p0, g0):
        t = torch()
        p = t.nn.Parameter(be.array(p0))
        p.grad = be.array(g0)
        opt = t.optim.AdamW([p], lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"])

        def step():
            opt.step()
            return p

        call = be.timed(step)
        call()
        call.param = p
        call.optimizer = opt
        return call

    def time_adamw_step(self, case, backend):
        self.fn()


FUSED_CLASSES = (RMSNorm, LayerNorm, SoftmaxVocab, AdamWStep)
