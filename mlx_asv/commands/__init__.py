"""The ``mlx-asv`` console command: one subcommand per module of this package.

    mlx-asv gate v0.31.0 v0.32.0      # each subcommand takes the arguments its module's main parses
    mlx-asv help                      # the subcommands

A subcommand's module is imported only when it runs, so one subcommand's
imports (torch, matplotlib) never slow another.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "ledger": ("mlx_asv.commands.ledger", "build or update the release ledger asv benchmarks"),
    "install": ("mlx_asv.commands.install", "install one release's MLX into the running python (asv's install_command)"),
    "torch-install": ("mlx_asv.commands.torch_install", "install a torch version into an asv environment"),
    "config-variant": ("mlx_asv.commands.config_variant", "write an asv config variant"),
    "count": ("mlx_asv.commands.count", "instruction counts under valgrind between releases"),
    "count-history": ("mlx_asv.commands.count_history", "an instruction-count run over releases, as asv results"),
    "gate": ("mlx_asv.commands.gate", "the sequential gate: is this release slower than its base?"),
    "steps": ("mlx_asv.commands.steps", "the gate between each pair of neighbouring releases"),
    "report": ("mlx_asv.commands.report", "tables of asv's results"),
    "regressions": ("mlx_asv.commands.regressions", "the site's regressions page, cut to confirmed verdicts"),
    "site-assets": ("mlx_asv.commands.site_assets", "local copies of the site's JavaScript"),
    "mainjob": ("mlx_asv.commands.mainjob", "the main job: newest releases interleaved, the site, the verdicts"),
    "bisect": ("mlx_asv.commands.mlxbisect", "bisect MLX commits between two releases"),
    "torch-matrix": ("mlx_asv.commands.torch_matrix", "one MLX release against several torch versions"),
    "calibrate": ("mlx_asv.commands.calibrate", "the calibration study: the gate's error rates on this machine"),
}


def usage():
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: mlx-asv SUBCOMMAND [ARGS]  (mlx-asv SUBCOMMAND --help: its arguments)", ""]
    lines += [f"  {name:<{width}}  {doc}" for name, (_, doc) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"mlx-asv: no subcommand {name!r}; mlx-asv help lists them", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    # argparse names the program from sys.argv[0]: "mlx-asv gate" in its usage lines.
    sys.argv = [f"mlx-asv {name}", *rest]
    return module.main()
