"""One MLX release across torch versions: the torch matrix's report.

``python reporting/report.py --torch-versions all --release v0.32.4`` prints,
for that MLX release and each torch version with results (the torch matrix,
asv.torch.conf.json, keeps one asv environment per version):

1. the detailed and average tables of each torch version (the same tables as
   the ordinary report: times per backend and the mlx-vs-torch speedups);
2. the **torch-version table**: a row per case and backend, a column per
   torch version, each cell the time and its change from the previous torch
   version, with the **verdict** (mlx_asv/decide/verdicts.py) where both versions
   were measured in one interleaved session (``python tools/torch_matrix.py
   --compare RELEASE``: ``.asv/torch/<run>/rounds.json``, whose sides are
   ``<commit>@torch<version>``), and otherwise marked cross-run, like the
   release table.

The ``mlx_*`` rows are this table's control: the same MLX release in every
environment, so their changes from one torch version to the next are noise
(or a change of numpy where the torch matrix pins another for an old torch).
"""

from __future__ import annotations

import dataclasses
import json

from mlx_asv.report import render, stats
from mlx_asv.report.report import Report  # the ordinary report, one per torch version
from mlx_asv.report.results import ANY_TORCH, ReportError, Results, version_key

# The torch matrix's session sides (tools/torch_matrix.py --compare).
def side(commit, torch):
    return f"{commit}@torch{torch}"


def parse_torch_versions(spec, available):
    if not spec or spec == "all":
        return list(available)
    chosen = [v.strip() for v in spec.split(",") if v.strip()]
    for v in chosen:
        if v not in available:
            raise ReportError(f"no results of torch {v}; results have torch {', '.join(available) or 'none'}")
    return sorted(set(chosen), key=version_key)


class TorchReport:
    """The reports of one MLX release, one per torch version, and the torch-version table."""

    def __init__(self, results_dir, versions="all", machine=None, ledger_dir=None, settings=None,
                 release=None, bench=None, backends=None, threshold=0.10, sessions=None, mde=None):
        probe = Results(results_dir, machine=machine, ledger_dir=ledger_dir, settings=settings, torch=ANY_TORCH)
        self.versions = parse_torch_versions(versions, probe.torch_versions)
        if len(self.versions) < 1:
            raise ReportError(f"machine {probe.machine!r}: no torch version recorded in its results")
        self.machine = probe.machine
        self.threshold = threshold
        self.sessions = sessions
        self.reports = {}
        self.missing = {}
        for v in self.versions:
            res = Results(results_dir, machine=probe.machine, tags=probe.tags, settings=settings, torch=v)
            try:
                self.reports[v] = Report(res, release=release or self._newest(probe), bench=bench,
                                         backends=backends, threshold=threshold, sessions=None, mde=mde)
            except ReportError as e:
                self.missing[v] = str(e)
        if not self.reports:
            raise ReportError(f"no torch version has results for the selection: "
                              f"{'; '.join(f'{v}: {m}' for v, m in self.missing.items())}")
        self.release = next(iter(self.reports.values())).release
        self.commit = next(iter(self.reports.values())).res.release_info[self.release]["commit"]
        # the columns of the torch-version table: the versions with results for the release
        self.releases = [v for v in self.versions if v in self.reports]

    @staticmethod
    def _newest(probe):
        return probe.releases()[-1]

    def rows(self):
        seen = {}
        for rep in self.reports.values():
            for b, c in rep.rows():
                seen.setdefault((b, c), rep.label(b, c))
        return list(seen.items())

    def backends(self):
        out = []
        for rep in self.reports.values():
            out += [b for b in rep.backends if b not in out]
        return out

    def changes(self):
        """Like Report.changes, across torch versions: per (case, backend) the
        entries of stats.change_entries with ``release`` = the torch version."""
        out = []
        for (b, c), label in self.rows():
            for bk in self.backends():
                series = [(v, self.reports[v].res.points.get((self.release, b, c, bk))) for v in self.releases]
                if all(p is None for _, p in series):
                    continue
                entries = stats.change_entries(series, self.threshold)
                self._attach_verdicts(series, entries)
                out.append({"operation": label, "benchmark": b, "case": c, "backend": bk,
                            "family": label.split(" / ")[0], "releases": entries})
        return out

    def _attach_verdicts(self, series, entries):
        prev = None
        for (v, point), e in zip(series, entries):
            e["verdict"], e["cross_run"], e["previous"] = None, False, None
            if e["ms"] is None:
                continue
            if prev is not None and e["change"] is not None:
                e["previous"] = prev
                found = {}
                if self.sessions is not None:
                    found, _ = self.sessions.verdicts(side(self.commit, prev), side(self.commit, v))
                e["verdict"] = found.get(point.get("asv_key"))
                e["cross_run"] = e["verdict"] is None
            prev = v


def markdown(tr):
    out = [f"# MLX {tr.release} across torch versions, on `{tr.machine}`", "",
           f"- **torch versions with results for {tr.release}**: {', '.join(tr.releases)}"]
    out += [f"- torch {v}: {why}" for v, why in tr.missing.items()]
    for v, rep in tr.reports.items():
        h = rep.header()
        out += [f"- torch {v}: asv environment {', '.join(f'`{e}`' for e in h['env_names'])}"]
    out.append("")
    for v, rep in tr.reports.items():
        headers, rows = render.detailed_table(rep)
        out += [f"## Detailed benchmark, MLX {tr.release}, torch {v} (ms)", "", render.md_table(headers, rows), ""]
        headers, rows = render.average_table(rep)
        out += [f"## Average benchmark, MLX {tr.release}, torch {v} (ms, geometric mean per family)", "",
                render.md_table(headers, rows), ""]
    out += [render.SPEEDUP_NOTE, "", render.AVERAGE_NOTE, ""]
    changes = tr.changes()
    headers, rows = render.release_table(tr, changes)
    headers[2:] = [f"torch {v}" for v in tr.releases]
    thr = f"{tr.threshold * 100:g}%"
    out += [f"## Across torch versions, MLX {tr.release} (ms, change from the previous torch version)", "",
            render.md_table(headers, rows), "",
            "Each cell: time in ms and (in brackets) the change from the previous torch version with a "
            "result for that row. **Verdicts** (`▲ slower` / `▼ faster` with the 99.9% interval of the "
            "ratio, `=` same, `~` undecided) where both torch versions were measured in one interleaved "
            "session (`python tools/torch_matrix.py --compare " + tr.release + "`); otherwise the change "
            f"is cross-run (`△`/`▽` past {thr} with asv's 99% intervals apart): never a confirmed change. "
            "The `mlx_*` rows are the control: the same MLX in every environment (an old torch's "
            "environment may pin another numpy: see its name above).", ""]
    return "\n".join(out)


def as_json(tr):
    changes = tr.changes()
    for row in changes:
        for e in row["releases"]:
            if e.get("verdict") is not None:
                e["verdict"] = dataclasses.asdict(e["verdict"])
            e["torch"] = e.pop("release")
    return json.dumps({
        "machine": tr.machine, "release": tr.release, "torch_versions": tr.releases, "missing": tr.missing,
        "detailed": {v: rep.detailed()[1] for v, rep in tr.reports.items()},
        "average": {v: rep.average()[1] for v, rep in tr.reports.items()},
        "changes": changes, "threshold": tr.threshold,
    }, indent=1, default=str)
