"""``mlx-asv steps``: the gate between each pair of neighbouring releases; the code is mlx_asv.decide.steps."""

from mlx_asv.decide.steps import main  # noqa: F401
