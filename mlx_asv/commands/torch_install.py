"""``mlx-asv torch-install``: install a torch version into an asv environment; the code is mlx_asv.envs.torch_install."""

from mlx_asv.envs.torch_install import main  # noqa: F401
