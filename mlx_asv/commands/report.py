"""``mlx-asv report`` (and ``python reporting/report.py``): tables and plots of
asv's results per MLX release (mlx_asv/report/report.py), or with
--torch-versions one release across torch versions (mlx_asv/report/torch_report.py).
The command line lives here, above both, so neither report imports the other's."""

from __future__ import annotations

import os
import sys

from mlx_asv.report import render, torch_report
from mlx_asv.report import report as tables
from mlx_asv.report.report import DEFAULT_THRESHOLD, ROOT, Report
from mlx_asv.report.results import ReportError, Results, parse_settings
from mlx_asv.report.sessions import Sessions, calibration_mde
from mlx_asv import cli


def main(argv=None):
    ap = cli.parser(tables.__doc__)
    ap.add_argument("--results", default=os.path.join(ROOT, "results"), help="asv results folder")
    ap.add_argument("--ledger", default=None, help="release ledger (default: ledger/, or built offline)")
    ap.add_argument("--machine", help="asv machine name (default: the only one, or the most recent)")
    ap.add_argument("--release", help="release of the detailed/average tables (default: newest shown)")
    ap.add_argument("--releases", default="all",
                    help="releases of the release table: all, v0.32.2,v0.32.4 or v0.30.0..v0.32.4 (inclusive)")
    ap.add_argument("--bench", "-b", help="regex on benchmark name, family or 'Family / case'")
    ap.add_argument("--backends", help="comma-separated backends (default: all with results)")
    ap.add_argument("--settings", metavar="VAR=VALUE[,...]",
                    help="only results recorded with these matrix settings, e.g. MLX_ENABLE_TF32=0 "
                         "(needed where a machine has results under several)")
    ap.add_argument("--torch", metavar="VERSION",
                    help="the torch version whose results the tables show (default: the only one, else "
                         "asv.conf.json's pinned control; the torch matrix, asv.torch.conf.json, records several)")
    ap.add_argument("--torch-versions", metavar="all|A,B",
                    help="one MLX release (--release) across torch versions: its detailed and average tables "
                         "per torch version, and the torch-version table (mlx_asv/report/torch_report.py)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help="flag changes of at least this fraction (default 0.10)")
    cli.add_format(ap, ("md", "csv", "json"))
    ap.add_argument("--table", choices=("long", "detailed", "average"), default="long",
                    help="with --format csv: which table")
    ap.add_argument("--evidence", default=ROOT, metavar="DIR",
                    help="the project whose .asv/ holds the sessions (main job, gate) and the calibration "
                         "(default: this one)")
    ap.add_argument("--cross-run-only", action="store_true",
                    help="ignore the same-run sessions of the main job and the gate (.asv/main, .asv/gate)")
    ap.add_argument("--plots", metavar="DIR", help="write one PNG and one SVG per op family to DIR and link them")
    args = ap.parse_args(argv)
    try:
        if not args.threshold > 0:
            raise ReportError(f"--threshold must be a positive fraction, e.g. 0.1 (got {args.threshold})")
        if args.torch_versions:
            return torch_main(args)
        res = Results(args.results, machine=args.machine, ledger_dir=args.ledger,
                      settings=parse_settings(args.settings), torch=args.torch)
        report = Report(res, release=args.release, releases=args.releases, bench=args.bench,
                        backends=args.backends, threshold=args.threshold,
                        sessions=None if args.cross_run_only else Sessions(root=args.evidence),
                        mde=calibration_mde(root=args.evidence))
        report.detailed()  # validates that the selection has data
        links = []
        if args.plots:
            from mlx_asv.report import plots  # matplotlib: imported only to plot

            links = plots.plot_families(report, args.plots)
        if args.format == "json":
            text = render.as_json(report, links)
        elif args.format == "csv":
            text = render.as_csv(report, args.table)
        else:
            text = render.markdown(report, links)
    except ReportError as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def torch_main(args):
    """--torch-versions: the torch matrix's report of one MLX release."""
    if args.format == "csv" or args.plots or args.torch:
        raise ReportError("--torch-versions prints Markdown or JSON (--format json), without --plots or --torch")
    tr = torch_report.TorchReport(
        args.results, versions=args.torch_versions, machine=args.machine, ledger_dir=args.ledger,
        settings=parse_settings(args.settings), release=args.release, bench=args.bench, backends=args.backends,
        threshold=args.threshold, sessions=None if args.cross_run_only else Sessions(root=args.evidence),
        mde=calibration_mde(root=args.evidence))
    text = torch_report.as_json(tr) if args.format == "json" else torch_report.markdown(tr)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0

