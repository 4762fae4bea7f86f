"""The operation catalogue of the mlx-benchmark project, as asv benchmarks.

One class per op family; each row of ``cases`` is one row of the seed tables
(``../shared/seeds/000``): its label, its full-size arguments (the seed's
shapes, never shrunk), and a small same-rank variant for the parity tests.
Every case runs on every backend of ``common.BACKENDS``.
"""

import abc

from .common import Case, CaseTable, mlx, normal, shape_label, torch


class OpFamily(CaseTable):
    """An op family: ``inputs`` makes NumPy data, ``mlx_op``/``torch_op`` the op.

    Both frameworks get the same NumPy inputs; the timed callable evaluates
    (MLX) or synchronizes (GPU) the op's result.
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
        """A function of the MLX arrays that returns the op's result."""

    @abc.abstractmethod
    def torch_op(self, args):
        """A function of the torch tensors that returns the op's result."""

    def build(self, backend, args, key):
        arrays = backend.arrays(self.inputs(args, key))
        op = self.mlx_op(args) if backend.is_mlx else self.torch_op(args)
        return backend.timed(op, *arrays)

    def time_op(self, case, backend):
        self.fn()


class MatMul(OpFamily):
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

    def inputs(self, args, key):
        return [normal(key + (i,), shape) for i, shape in enumerate(args)]

    def mlx_op(self, args):
        return mlx().matmul

    def torch_op(self, args):
        return torch().matmul


class Softmax(OpFamily):
    cases = tuple(
        Case(f"{shape_label(shape)} axis={axis}", (shape, axis), (small, axis))
        for shape, axis, small in [
            ((64, 1000000), -1, (4, 50)),
            ((1000000, 64), -1, (50, 4)),
            ((64, 16, 32, 1024), -1, (2, 3, 4, 5)),
            ((128, 16, 32, 1024), -1, (3, 2, 4, 6)),
            ((1024, 16, 32, 128), -1, (4, 2, 3, 5)),
            ((1024, 64, 32, 8), -1, (5, 4, 3, 2)),
        ]
    )

    def inputs(self, args, key):
        return [normal(key, args[0])]

    def mlx_op(self, args):
        axis = args[1]
        return lambda x: mlx().softmax(x, axis=axis)

    def torch_op(self, args):
        axis = args[1]
        return lambda x: torch().softmax(x, dim=axis)


class SumAll(OpFamily):
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
