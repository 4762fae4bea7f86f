#!/usr/bin/env python3
"""Tables and plots of this suite's asv results, per MLX release.

Reads asv's ``results/`` (results/<machine>/*.json, benchmarks.json) and the
release ledger (commit -> MLX release tag), and prints Markdown:

1. a header: machine (CPU, GPU, OS), MLX and torch versions, asv settings,
   and per asv environment the install flavour and MLX_ENABLE_TF32 (asv.conf.json's
   matrix records them; results from under several settings are refused unless
   ``--settings`` picks one);
2. the detailed table of one release in the seed tables' shape: a row per
   ``Op / case``, a column per backend (ms), speedup columns;
3. the average table: one row per op family, over the cases that all the
   row's backends have;
4. the release table: a row per case and backend, a column per MLX release,
   with the change from the previous release; changes past the threshold
   that asv's confidence intervals confirm are flagged;
5. the measured noise the threshold is judged against;
6. links to the plots (``--plots DIR``: one PNG and one SVG per op family,
   time vs release, the samples' interquartile range as error bars).

Speedup of A over B = time_B / time_A, shown as an x-factor (2.00x: A takes
half B's time; 0.50x: A takes twice as long).

This file is the command line and the selection (:class:`Report`); the
package's other modules read the results (mlx_asv/report/results.py), compute
(mlx_asv/report/stats.py), render (mlx_asv/report/render.py) and plot
(mlx_asv/report/plots.py).

Usage:
    python reporting/report.py                                  # newest release, the only machine
    python reporting/report.py --release v0.32.3 --machine vm
    python reporting/report.py --bench Softmax --backends mlx_cpu,torch_cpu
    python reporting/report.py --releases v0.32.2..v0.32.4 --plots docs/plots
    python reporting/report.py --format csv --table detailed
    python reporting/report.py --format json > report.json
    python reporting/report.py --settings MLX_ENABLE_TF32=0   # the results of a config variant
    python reporting/report.py --torch 2.7.1                  # the tables of one torch version (torch matrix)
    python reporting/report.py --torch-versions all --release v0.32.4   # one MLX release across torch versions

Bad selections (unknown machine or backend, a release without results, a
regex that matches nothing) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

from benchmarks.common import BACKENDS  # numpy only; the frameworks load lazily
from mlx_asv.measure import protocol
from mlx_asv.report import render, stats
from mlx_asv.report.sessions import Sessions, calibration_mde
from mlx_asv.report.results import (ReportError, Results, SETTING_VARS, families, parse_settings,
                                    version_key as _version_key)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Speedup columns, "A over B", shown where both backends have results.
SPEEDUP_PAIRS = (
    ("mlx_cpu", "torch_cpu"),
    ("mlx_gpu", "mlx_cpu"),
    ("mlx_gpu_compile", "mlx_gpu"),
    ("mlx_gpu", "torch_cuda"),
    ("mlx_gpu", "torch_mps"),
    ("torch_cuda", "torch_cpu"),
    ("torch_mps", "torch_cpu"),
)
# asv.conf.json: "regressions_thresholds": {".*": 0.1}
DEFAULT_THRESHOLD = 0.10
# torch is pinned (asv.conf.json matrix): its results do not depend on the MLX
# release, so their release-to-release changes measure the noise.
CONTROL_PREFIX = "torch_"


# --------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------


def parse_releases(spec, available):
    """'all', 'v1,v2' or 'vA..vB' (inclusive) -> releases in order."""
    if not spec or spec == "all":
        return list(available)
    if ".." in spec:
        lo, hi = spec.split("..", 1)
        for r in (lo, hi):
            if r and r not in available and not re.fullmatch(r"v?\d+(\.\d+)*", r):
                raise ReportError(f"bad release range bound {r!r}")
        klo = _version_key(lo) if lo else (-1,)
        khi = _version_key(hi) if hi else (math.inf,)
        chosen = [r for r in available if klo <= _version_key(r) <= khi]
        if not chosen:
            raise ReportError(f"no release with results in {spec}; results have: {', '.join(available)}")
        return chosen
    chosen = []
    for r in (s.strip() for s in spec.split(",") if s.strip()):
        if not r.startswith("v") and "v" + r in available:
            r = "v" + r
        if r not in available:
            raise ReportError(f"release {r} has no results on this machine; results have: "
                              f"{', '.join(available)}")
        chosen.append(r)
    return sorted(set(chosen), key=_version_key)


def parse_backends(spec, present, with_data=None):
    """The chosen backends; by default those with at least one result."""
    if not spec:
        have = present if with_data is None else set(with_data)
        return [b for b in BACKENDS if b in have] + sorted(b for b in have if b not in BACKENDS)
    chosen = [s.strip() for s in spec.split(",") if s.strip()]
    known = set(BACKENDS) | set(present)
    for b in chosen:
        if b not in known:
            raise ReportError(f"unknown backend {b!r}; choose from {', '.join(BACKENDS)}")
    return chosen


# --------------------------------------------------------------------------
# The report: a selection of the results, and its tables as data
# --------------------------------------------------------------------------


class Report:
    def __init__(self, results, release=None, releases=None, bench=None, backends=None,
                 threshold=DEFAULT_THRESHOLD, sessions=None, mde=None):
        self.res = results
        # {asv case key: minimum detectable effect} from studies/calibrate.py
        self.mde = mde or {}
        # Same-run evidence (mlx_asv/report/sessions.py); None: cross-run only.
        self.sessions = sessions
        mixed = results.mixed_settings()
        if mixed:
            # The tables would compare TF32 with non-TF32 (or two flavours) as if a release did it.
            listed = "; ".join(f"{env}: {', '.join(f'{k}={v}' for k, v in s.items())}" for env, s in mixed)
            raise ReportError(f"machine {results.machine!r} has results under different settings ({listed}); "
                              f"choose one with --settings, e.g. --settings MLX_ENABLE_TF32="
                              f"{mixed[0][1]['MLX_ENABLE_TF32']}")
        available = results.releases()
        if not available:
            raise ReportError("no releases with results")
        self.releases = parse_releases(releases, available)
        if release is not None:
            if not release.startswith("v") and "v" + release in available:
                release = "v" + release
            if release not in available:
                raise ReportError(f"release {release} has no results on machine "
                                  f"{results.machine!r}; results have: {', '.join(available)}")
        all_benches = sorted(results.bench_meta)
        timed = [b for b in all_benches if results.unit(b) == "seconds"]
        self.skipped_benches = [b for b in all_benches if b not in timed]
        self.family = families(all_benches)
        if bench:
            try:
                rx = re.compile(bench)
            except re.error as e:
                raise ReportError(f"bad --bench regex {bench!r}: {e}") from None
            timed = [b for b in timed if rx.search(b) or rx.search(self.family[b])
                     or any(rx.search(f"{self.family[b]} / {c}") for c in results.bench_meta[b]["cases"])]
            if not timed:
                raise ReportError(f"--bench {bench!r} matches no timed benchmark; have: "
                                  f"{', '.join(sorted({self.family[b] for b in all_benches}))}")
        self.bench_regex = bench
        self.benches = sorted(timed, key=lambda b: (self.family[b].lower(), b))
        present = {bk for b in self.benches for bk in results.bench_meta[b]["backends"]}
        with_data = {k[3] for k, p in results.points.items()
                     if p["status"] == "ok" and k[1] in self.benches and k[0] in self.releases}
        self.backends = parse_backends(backends, present, with_data)
        self.threshold = threshold
        if release is None:  # the newest shown release with a result for the selection
            with_data = [r for r in self.releases if any(
                self.ms(r, b, c, bk) is not None for b, c in self.rows() for bk in self.backends)]
            release = with_data[-1] if with_data else self.releases[-1]
        self.release = release

    # -- helpers --

    def rows(self):
        """(bench, case) in family then asv's parameter order; filtered by the regex."""
        rx = re.compile(self.bench_regex) if self.bench_regex else None
        out = []
        for b in self.benches:
            for case in self.res.bench_meta[b]["cases"]:
                if rx and not (rx.search(b) or rx.search(self.family[b])
                               or rx.search(f"{self.family[b]} / {case}")):
                    continue
                out.append((b, case))
        return out

    def label(self, bench, case):
        return f"{self.family[bench]} / {case}" if case != "-" else self.family[bench]

    def ms(self, release, bench, case, backend):
        return stats.ms(self.res.points.get((release, bench, case, backend)))

    def backends_with_data(self, release):
        return [bk for bk in self.backends
                if any(self.ms(release, b, c, bk) is not None for b, c in self.rows())]

    def pairs(self, release):
        have = set(self.backends_with_data(release))
        return [(a, b) for a, b in SPEEDUP_PAIRS if a in have and b in have]

    # -- tables as data: each is (headers, rows of dicts); mlx_asv/report/render.py formats them --

    def detailed(self):
        rel = self.release
        cols = self.backends_with_data(rel)
        if not cols:
            raise ReportError(f"no results for the selection on {rel} "
                              f"(backends {', '.join(self.backends)})")
        pairs = self.pairs(rel)
        headers = ["Operation"] + cols + [f"{a} vs {b} speedup" for a, b in pairs]
        raw = []
        for b, c in self.rows():
            times = {bk: self.ms(rel, b, c, bk) for bk in cols}
            if all(t is None for t in times.values()) and all(
                    (rel, b, c, bk) not in self.res.points for bk in cols):
                continue
            speed = {f"{x} vs {y}": (times[y] / times[x] if times[x] and times[y] else None)
                     for x, y in pairs}
            keys = {bk: (self.res.points.get((rel, b, c, bk)) or {}).get("asv_key") for bk in cols}
            raw.append({"operation": self.label(b, c), "benchmark": b, "family": self.family[b],
                        "case": c, "times_ms": times, "speedups": speed,
                        "mde": {bk: self.mde.get(k) for bk, k in keys.items() if k in self.mde}})
        return headers, raw

    def average(self):
        """Per family, the geometric means over the cases all the row's backends
        share (stats.family_average)."""
        rel = self.release
        cols = self.backends_with_data(rel)
        pairs = self.pairs(rel)
        headers = ["Operation", "cases"] + cols + [f"{a} vs {b} speedup" for a, b in pairs]
        fams = {}
        for b, c in self.rows():
            fams.setdefault(self.family[b], []).append((b, c))
        raw = []
        for fam, members in fams.items():
            times = {(b, c): {bk: self.ms(rel, b, c, bk) for bk in cols} for b, c in members}
            avg = stats.family_average(times, cols, pairs)
            if not avg["backends"]:
                continue
            raw.append({"family": fam, "cases": len(members), "shared_cases": len(avg["shared"]),
                        "backends": avg["backends"], "geomean_ms": avg["geomean_ms"],
                        "speedups": avg["speedups"]})
        return headers, raw

    def changes(self):
        """Per (bench, case, backend): values per release, change vs the previous
        selected release with a value, and whether it is flagged."""
        out = []
        for b, c in self.rows():
            for bk in self.backends:
                if not any((r, b, c, bk) in self.res.points for r in self.releases):
                    continue
                series = [(r, self.res.points.get((r, b, c, bk))) for r in self.releases]
                entries = stats.change_entries(series, self.threshold)
                self._attach_verdicts(series, entries)
                out.append({"operation": self.label(b, c), "benchmark": b, "family": self.family[b],
                            "case": c, "backend": bk, "releases": entries})
        return out

    def _attach_verdicts(self, series, entries):
        """Each change gets ``verdict`` (a verdicts.Verdict) where both releases
        were measured in one interleaved session, else ``cross_run`` = True:
        a cross-run change is never confirmed (the gate command confirms it)."""
        prev = None
        for (release, point), e in zip(series, entries):
            e["verdict"], e["cross_run"], e["previous"] = None, False, None
            if e["ms"] is None:
                continue
            if prev is not None and e["change"] is not None:
                e["previous"] = prev[0]
                found = {}
                if self.sessions is not None:
                    found, _ = self.sessions.verdicts(self.res.release_info[prev[0]]["commit"],
                                                      self.res.release_info[release]["commit"])
                e["verdict"] = found.get(point.get("asv_key"))
                e["cross_run"] = e["verdict"] is None
            prev = (release, point)

    def gate_commands(self, changes):
        """The commands that would confirm the cross-run flags: one gate per release pair."""
        pairs = {}
        for row in changes:
            for e in row["releases"]:
                if e.get("cross_run") and e["flag"]:
                    key = e["previous"], e["release"]
                    pairs.setdefault(key, set()).add((row["benchmark"], row["backend"]))
        cmds = []
        for (a, b), rows in sorted(pairs.items()):
            benches = sorted({bench for bench, _ in rows})
            backends = sorted({bk for _, bk in rows})
            rx = protocol.bench_regex(backends, names="^(" + "|".join(re.escape(x) for x in benches) + ")")
            cmds.append((a, b, len(rows), f"python tools/gate.py {a} {b} -b \"{rx}\""))
        return cmds

    def noise(self, changes=None):
        """Measured noise, per backend: the spread asv recorded inside each result
        (IQR / median of the samples) and the release-to-release changes. torch is
        pinned, so its changes are noise only (the control)."""
        changes = changes if changes is not None else self.changes()
        points = [(k, p) for (r, b, c, k), p in self.res.points.items()
                  if r in self.releases and b in self.benches]
        return stats.noise(points, changes, self.backends, CONTROL_PREFIX)

    # -- header --

    def header(self):
        m = self.res.machine_info
        info = self.res.release_info[self.release]
        req = dict(info["requirements"])
        torch = req.get("torch") or ", ".join(sorted(v for v in info.get("torch", ()) if v))
        if not torch:
            for env in info["env_names"]:
                found = re.search(r"torch([\d.]+\w*)", env or "")
                if found:
                    torch = found.group(1)
        try:
            ram = f"{int(m.get('ram', 0)) / 2 ** 30:.0f} GiB"
        except ValueError:
            ram = m.get("ram", "?")
        gpu = m.get("gpu") or m.get("gpu_name")
        gpu_backends = sorted({bk for r in self.releases for bk in self.backends_with_data(r)}
                              - {"mlx_cpu", "torch_cpu"}, key=lambda b: (b not in BACKENDS, b))
        if not gpu:
            gpu = ("not recorded in machine.json; results on " + ", ".join(gpu_backends)) if gpu_backends \
                else "none used (no GPU backend has results)"
        settings = []
        for b in self.benches:
            meta = self.res.benchmarks.get(b, {})
            recorded = sorted({(p["number"], p["repeat"]) for (r, bb, c, k), p in self.res.points.items()
                               if bb == b and r == self.release and p["status"] == "ok"
                               and p["number"] is not None})
            conf = ", ".join(f"{k}={meta[k]}" for k in ("rounds", "repeat", "number", "warmup_time",
                                                        "min_run_count", "timeout") if k in meta)
            samples = ", ".join(f"{n}x{rep}" for n, rep in recorded) or "-"
            settings.append((self.family[b], conf or "(benchmarks.json has no entry)", samples))
        return {
            "machine": m.get("machine", self.res.machine), "cpu": m.get("cpu"), "arch": m.get("arch"),
            "num_cpu": m.get("num_cpu"), "ram": ram, "os": m.get("os"), "gpu": gpu,
            "release": self.release, "mlx": self.release.lstrip("v"), "commit": info["commit"],
            "torch": torch, "python": info.get("python"),
            # the torch matrix's other versions with results on this machine (not in these tables)
            "torch_others": [v for v in getattr(self.res, "torch_versions", []) if v != self.res.torch],
            "requirements": req, "env_names": sorted(e for e in info["env_names"] if e),
            # per environment: the install flavour and MLX_ENABLE_TF32 (None: not recorded)
            "env_settings": {e: self.res.env_settings.get(e, dict.fromkeys(SETTING_VARS))
                             for e in sorted(info["env_names"])},
            "settings": settings,
        }
