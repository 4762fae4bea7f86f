#!/usr/bin/env python3
"""Kept so that ``python tools/ledger.py`` still works: it is ``mlx-asv ledger`` (mlx_asv.envs.ledger)."""

import sys

from mlx_asv.envs.ledger import main

if __name__ == "__main__":
    sys.exit(main())
