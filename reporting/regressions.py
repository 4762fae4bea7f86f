#!/usr/bin/env python3
"""Kept so that ``python reporting/regressions.py`` still works: it is ``mlx-asv regressions`` (mlx_asv.report.regressions)."""

import sys

from mlx_asv.report.regressions import main

if __name__ == "__main__":
    sys.exit(main())
