"""``mlx-asv count``: instruction counts under valgrind between releases; the code is mlx_asv.decide.instructions."""

from mlx_asv.decide.instructions import main  # noqa: F401
