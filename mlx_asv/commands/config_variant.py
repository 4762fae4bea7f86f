"""``mlx-asv config-variant``: write an asv config variant; the code is mlx_asv.envs.config_variant."""

from mlx_asv.envs.config_variant import main  # noqa: F401
