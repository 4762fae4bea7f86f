#!/usr/bin/env python3
"""Kept so that ``python tools/mlxbisect.py`` still works: it is ``mlx-asv bisect`` (mlx_asv.commands.mlxbisect)."""

import sys

from mlx_asv.commands.mlxbisect import main

if __name__ == "__main__":
    sys.exit(main())
