"""``mlx-asv count``: instruction counts under valgrind between releases; the code is mlx_asv.measure.instructions."""

from mlx_asv.measure.instructions import main  # noqa: F401
