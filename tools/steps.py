#!/usr/bin/env python3
"""Kept so that ``python tools/steps.py`` still works: it is ``mlx-asv steps`` (mlx_asv.decide.steps)."""

import sys

from mlx_asv.decide.steps import main

if __name__ == "__main__":
    sys.exit(main())
