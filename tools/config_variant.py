#!/usr/bin/env python3
"""Kept so that ``python tools/config_variant.py`` still works: it is ``mlx-asv config-variant`` (mlx_asv.envs.config_variant)."""

import sys

from mlx_asv.envs.config_variant import main

if __name__ == "__main__":
    sys.exit(main())
