#!/usr/bin/env python3
"""Kept as a file for the torch matrix's install_command (asv.torch.conf.json),
which runs it with an asv environment's python: that python lacks the mlx_asv
package, so the module runs there as ``python -m mlx_asv.envs.torch_install``
from the repository root, where the package imports without editing sys.path
(asv passes absolute paths).  Elsewhere this is ``mlx-asv torch-install``."""

import os
import subprocess
import sys

try:
    from mlx_asv.envs.torch_install import main
except ImportError:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.exit(subprocess.call([sys.executable, "-m", "mlx_asv.envs.torch_install", *sys.argv[1:]], cwd=root))

if __name__ == "__main__":
    sys.exit(main())
