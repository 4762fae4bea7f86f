"""``mlx-asv install``: install one release's MLX into the running python (asv's install_command); the code is mlx_asv.envs.install."""

from mlx_asv.envs.install import main  # noqa: F401
