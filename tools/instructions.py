#!/usr/bin/env python3
"""Kept so that ``python tools/instructions.py`` still works: it is ``mlx-asv count`` (mlx_asv.decide.instructions)."""

import sys

from mlx_asv.decide.instructions import main

if __name__ == "__main__":
    sys.exit(main())
