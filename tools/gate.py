#!/usr/bin/env python3
"""Kept so that ``python tools/gate.py`` still works: it is ``mlx-asv gate`` (mlx_asv.decide.gate)."""

import sys

from mlx_asv.decide.gate import main

if __name__ == "__main__":
    sys.exit(main())
