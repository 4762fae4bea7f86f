"""``mlx-asv gate``: the sequential gate: is this release slower than its base?; the code is mlx_asv.decide.gate."""

from mlx_asv.decide.gate import main  # noqa: F401
