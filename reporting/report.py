#!/usr/bin/env python3
"""Kept so that ``python reporting/report.py`` still works: it is ``mlx-asv report`` (mlx_asv.commands.report)."""

import sys

from mlx_asv.commands.report import main

if __name__ == "__main__":
    sys.exit(main())
