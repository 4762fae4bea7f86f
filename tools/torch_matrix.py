#!/usr/bin/env python3
"""Kept so that ``python tools/torch_matrix.py`` still works: it is ``mlx-asv torch-matrix`` (mlx_asv.commands.torch_matrix)."""

import sys

from mlx_asv.commands.torch_matrix import main

if __name__ == "__main__":
    sys.exit(main())
