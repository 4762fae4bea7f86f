#!/usr/bin/env python3
"""Kept so that ``python tools/torch_install.py`` still works: it is ``mlx-asv torch-install`` (mlx_asv.envs.torch_install)."""

import sys

from mlx_asv.envs.torch_install import main

if __name__ == "__main__":
    sys.exit(main())
