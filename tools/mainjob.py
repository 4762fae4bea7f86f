#!/usr/bin/env python3
"""Kept so that ``python tools/mainjob.py`` still works: it is ``mlx-asv mainjob`` (mlx_asv.commands.mainjob)."""

import sys

from mlx_asv.commands.mainjob import main

if __name__ == "__main__":
    sys.exit(main())
