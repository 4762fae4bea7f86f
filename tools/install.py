#!/usr/bin/env python3
"""Kept as a file for asv's install_command and the instruction counts, which
run it with an asv environment's python: that python lacks the mlx_asv
package, so the module runs there as ``python -m mlx_asv.envs.install`` from
the repository root, where the package imports without editing sys.path
(those callers pass absolute paths).  Elsewhere this is ``mlx-asv install``."""

import os
import subprocess
import sys

try:
    from mlx_asv.envs.install import main
except ImportError:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.exit(subprocess.call([sys.executable, "-m", "mlx_asv.envs.install", *sys.argv[1:]], cwd=root))

if __name__ == "__main__":
    sys.exit(main())
