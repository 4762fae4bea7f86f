"""``python -m mlx_asv.commands SUBCOMMAND``: the mlx-asv command without the
install, from the repository root (where python finds the package), for a
python that lacks it: a bare CI runner's, a GPU host's."""

import sys

from mlx_asv.commands import main

sys.exit(main())
