#!/usr/bin/env python3
"""Kept so that ``python tools/ledger.py`` still works: it is ``mlx-asv ledger``
(mlx_asv/envs/ledger.py).  A python that lacks the mlx_asv package (a bare CI
runner's, a GPU host's: mlx_asv/gpu/gpu_asv.sh) runs the module as ``python -m
mlx_asv.envs.ledger`` from the repository root, where the package imports
without editing sys.path."""

import os
import subprocess
import sys

try:
    from mlx_asv.envs.ledger import main
except ImportError:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.exit(subprocess.call([sys.executable, "-m", "mlx_asv.envs.ledger", *sys.argv[1:]], cwd=root))

if __name__ == "__main__":
    sys.exit(main())
