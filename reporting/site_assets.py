#!/usr/bin/env python3
"""Kept so that ``python reporting/site_assets.py`` still works: it is ``mlx-asv site-assets`` (mlx_asv.report.site_assets)."""

import sys

from mlx_asv.report.site_assets import main

if __name__ == "__main__":
    sys.exit(main())
