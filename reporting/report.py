#!/usr/bin/env python3
"""Tables and plots of this suite's asv results, per MLX release.

Reads asv's ``results/`` (results/<machine>/*.json, benchmarks.json) and the
release ledger (commit -> MLX release tag), and prints Markdown:

1. a header: machine (CPU, GPU, OS), MLX and torch versions, asv settings;
2. the detailed table of one release in the seed tables' shape: a row per
   ``Op / case``, a column per backend (ms), speedup columns;
3. the average table: one row per op family;
4. the release table: a row per case and backend, a column per MLX release,
   with the change from the previous release; changes past the threshold
   that asv's confidence intervals confirm are flagged;
5. the measured noise the threshold is judged against;
6. links to the plots (``--plots DIR``: one PNG per op family, time vs release).

Speedup of A over B = time_B / time_A, shown as an x-factor (2.00x: A takes
half B's time; 0.50x: A takes twice as long).

Usage:
    python reporting/report.py                                  # newest release, the only machine
    python reporting/report.py --release v0.32.3 --machine vm
    python reporting/report.py --bench Softmax --backends mlx_cpu,torch_cpu
    python reporting/report.py --releases v0.32.2..v0.32.4 --plots docs/plots
    python reporting/report.py --format csv --table detailed
    python reporting/report.py --format json > report.json

Bad selections (unknown machine or backend, a release without results, a
regex that matches nothing) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BACKENDS = ("mlx_cpu", "mlx_gpu", "mlx_gpu_compile", "torch_cpu", "torch_cuda", "torch_mps")
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

SPEEDUP_NOTE = (
    "Speedup of A over B (column `A vs B`) = time_B / time_A, shown as an x-factor: "
    "`2.00x` means A takes half of B's time, `0.50x` that A takes twice as long. "
    "The seed tables used two formulas under the same name: 000/001 print "
    "time_B / time_A - 1 as a percentage (+100% = 2x; the same quantity as here, minus one), "
    "but 002 prints (time_B - time_A) / time_B (= 1 - time_A / time_B), the share of B's time "
    "saved, which is wrong as a speedup: it can never exceed 1 (a 2x speedup shows 0.50, "
    "a 100x one 0.99) and is unbounded below (2x slower shows -1.00), so it is not symmetric "
    "and not comparable with 000's numbers."
)
AVERAGE_NOTE = (
    "Per op family: the geometric mean of the family's per-case times (ms) on each backend, over "
    "the cases that have a result there, and the geometric mean of the per-case speedups over the "
    "cases both backends have (the seed's arithmetic mean of times lets the slowest case decide; "
    "a geometric mean weighs every case alike)."
)


class ReportError(Exception):
    """A bad selection or unusable input: one line for the user, exit code 2."""


# --------------------------------------------------------------------------
# Reading asv's results
# --------------------------------------------------------------------------


def _unquote(value):
    value = str(value)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _version_key(tag):
    parts = re.findall(r"\d+", tag)
    return tuple(int(p) for p in parts) if parts else (math.inf,)


def ledger_tags(ledger_dir=None):
    """{commit hash: release tag} of the release ledger.

    Reads the ledger's tags with git; if there is no ledger, builds one offline
    from tools/mlx_releases.tsv in a temporary folder (the hashes depend only
    on that table, so they match every machine's ledger).
    """
    ledger_dir = ledger_dir or os.path.join(ROOT, "ledger")

    def read(repo):
        env = dict(os.environ, GIT_DIR=repo, LC_ALL="C")
        proc = subprocess.run(["git", "for-each-ref", "--format=%(objectname) %(refname:short)",
                               "refs/tags"], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            return None
        return {h: tag for h, tag in (line.split() for line in proc.stdout.splitlines())}

    if os.path.isdir(ledger_dir):
        git_dir = ledger_dir if os.path.isdir(os.path.join(ledger_dir, "objects")) \
            else os.path.join(ledger_dir, ".git")
        tags = read(git_dir)
        if tags:
            return tags
    from tools import ledger

    with tempfile.TemporaryDirectory() as tmp:
        built = ledger.build(ledger.read_table(), repo=os.path.join(tmp, "ledger"), log=lambda m: None)
    return {commit: rel.tag for rel, commit in built}


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read {path}: {e}") from None


def machines(results_dir):
    """Machine names under results_dir (folders with a machine.json)."""
    if not os.path.isdir(results_dir):
        raise ReportError(f"no results folder {results_dir}")
    return sorted(m for m in os.listdir(results_dir)
                  if os.path.isfile(os.path.join(results_dir, m, "machine.json")))


class Results:
    """The asv results of one machine, keyed by (release, benchmark, case, backend)."""

    def __init__(self, results_dir, machine=None, ledger_dir=None, tags=None):
        self.results_dir = results_dir
        names = machines(results_dir)
        if not names:
            raise ReportError(f"no asv results in {results_dir} (no <machine>/machine.json)")
        files_of = {m: self._result_files(m) for m in names}
        if machine is None:
            if len(names) == 1:
                machine = names[0]
            else:  # the machine with the most recent results file
                machine = max(names, key=lambda m: max(
                    [os.path.getmtime(p) for p in files_of[m]] or [0]))
        elif machine not in names:
            raise ReportError(f"unknown machine {machine!r}; results have: {', '.join(names)}")
        self.machine = machine
        self.machine_info = _read_json(os.path.join(results_dir, machine, "machine.json"))
        bench_path = os.path.join(results_dir, "benchmarks.json")
        self.benchmarks = _read_json(bench_path) if os.path.exists(bench_path) else {}
        self.tags = tags if tags is not None else ledger_tags(ledger_dir)
        self.points = {}  # (release, bench, case, backend) -> dict
        self.release_info = {}  # release -> {commit, date, env_name, requirements, python}
        self.bench_meta = {}  # bench -> {param_names, cases (ordered), backends}
        for path in sorted(files_of[machine]):
            self._load(_read_json(path))
        if not self.release_info:
            raise ReportError(f"machine {machine!r} has no results files in {results_dir}/{machine}")

    def _result_files(self, machine):
        folder = os.path.join(self.results_dir, machine)
        return [os.path.join(folder, n) for n in os.listdir(folder)
                if n.endswith(".json") and n != "machine.json"]

    def _load(self, data):
        if data.get("version") != 2 or "commit_hash" not in data:
            return
        commit = data["commit_hash"]
        release = self.tags.get(commit, commit[:8])
        columns = data.get("result_columns") or []
        info = self.release_info.setdefault(release, {
            "commit": commit, "date": data.get("date"), "env_names": set(),
            "requirements": {}, "python": data.get("python")})
        info["env_names"].add(data.get("env_name", ""))
        info["requirements"].update(data.get("requirements") or {})
        for bench, row in (data.get("results") or {}).items():
            r = dict(zip(columns, row))
            params = r.get("params") or []
            meta = self.benchmarks.get(bench, {})
            param_names = meta.get("param_names") or [f"param{i + 1}" for i in range(len(params))]
            bmeta = self.bench_meta.setdefault(bench, {"param_names": param_names, "cases": [],
                                                       "backends": []})
            combos = list(itertools.product(*params)) if params else [()]
            values = r.get("result")
            started = r.get("started_at") or 0
            for i, combo in enumerate(combos):
                labels = [_unquote(p) for p in combo]
                if "backend" in param_names and len(labels) == len(param_names):
                    k = param_names.index("backend")
                    backend = labels[k]
                    case = ", ".join(labels[:k] + labels[k + 1:]) or "-"
                else:
                    backend, case = "-", ", ".join(labels) or "-"
                if case not in bmeta["cases"]:
                    bmeta["cases"].append(case)
                if backend not in bmeta["backends"]:
                    bmeta["backends"].append(backend)

                def col(name):
                    seq = r.get(name)
                    return seq[i] if isinstance(seq, list) and i < len(seq) else None

                value = values[i] if isinstance(values, list) and i < len(values) else None
                if value is not None and not _finite(value):
                    status = "skipped"  # asv: NaN = skipped (NotImplementedError)
                elif value is None:
                    status = "failed"
                else:
                    status = "ok"
                key = (release, bench, case, backend)
                old = self.points.get(key)
                if old is not None and old["started_at"] > started and old["status"] == "ok":
                    continue  # several files for one release: the newest result wins
                self.points[key] = {
                    "status": status, "value": value if status == "ok" else None,
                    "ci": (col("stats_ci_99_a"), col("stats_ci_99_b")),
                    "q": (col("stats_q_25"), col("stats_q_75")),
                    "number": col("stats_number"), "repeat": col("stats_repeat"),
                    "started_at": started,
                }

    # ------------------------------------------------------------------

    def releases(self):
        """Releases with results, in ledger (version) order."""
        return sorted(self.release_info, key=_version_key)

    def unit(self, bench):
        meta = self.benchmarks.get(bench, {})
        if meta:
            return meta.get("unit", "seconds")
        return "seconds" if bench.rsplit(".", 1)[-1].startswith("time_") else "unit"


def family_of(bench, all_benches):
    """'ops.Softmax.time_op' -> 'Softmax' (Class.method where a class has several)."""
    parts = bench.split(".")
    if len(parts) < 3:
        return parts[-1]
    cls = parts[-2]
    siblings = {b for b in all_benches if b.split(".")[:-1] == parts[:-1]}
    return cls if len(siblings) == 1 else f"{cls}.{parts[-1]}"


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
# Tables
# --------------------------------------------------------------------------


def fmt_ms(value):
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_x(value):
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_pct(value):
    return "" if value is None else f"{value * 100:+.0f}%"


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def ci_overlap(a, b):
    """True/False if both 99% CIs are known (finite), else None."""
    (a0, a1), (b0, b1) = a, b
    if not all(_finite(x) for x in (a0, a1, b0, b1)):
        return None
    return not (a1 < b0 or b1 < a0)


class Report:
    def __init__(self, results, release=None, releases=None, bench=None, backends=None,
                 threshold=DEFAULT_THRESHOLD):
        self.res = results
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
        self.family = {b: family_of(b, all_benches) for b in all_benches}
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
        p = self.res.points.get((release, bench, case, backend))
        return p["value"] * 1e3 if p and p["status"] == "ok" else None

    def cell(self, release, bench, case, backend):
        p = self.res.points.get((release, bench, case, backend))
        if p is None or p["status"] == "skipped":
            return "n/a"
        if p["status"] == "failed":
            return "failed"
        return fmt_ms(p["value"] * 1e3)

    def backends_with_data(self, release):
        return [bk for bk in self.backends
                if any(self.ms(release, b, c, bk) is not None for b, c in self.rows())]

    def pairs(self, release):
        have = set(self.backends_with_data(release))
        return [(a, b) for a, b in SPEEDUP_PAIRS if a in have and b in have]

    # -- tables: each is (headers, rows of cells, rows of raw dicts) --

    def detailed(self):
        rel = self.release
        cols = self.backends_with_data(rel)
        if not cols:
            raise ReportError(f"no results for the selection on {rel} "
                              f"(backends {', '.join(self.backends)})")
        pairs = self.pairs(rel)
        headers = ["Operation"] + cols + [f"{a} vs {b} speedup" for a, b in pairs]
        rows, raw = [], []
        for b, c in self.rows():
            times = {bk: self.ms(rel, b, c, bk) for bk in cols}
            if all(t is None for t in times.values()) and all(
                    (rel, b, c, bk) not in self.res.points for bk in cols):
                continue
            speed = {f"{x} vs {y}": (times[y] / times[x] if times[x] and times[y] else None)
                     for x, y in pairs}
            rows.append([self.label(b, c)] + [self.cell(rel, b, c, bk) for bk in cols]
                        + [fmt_x(v) for v in speed.values()])
            raw.append({"operation": self.label(b, c), "benchmark": b, "family": self.family[b],
                        "case": c, "times_ms": times, "speedups": speed})
        return headers, rows, raw

    def average(self):
        rel = self.release
        cols = self.backends_with_data(rel)
        pairs = self.pairs(rel)
        headers = ["Operation"] + cols + [f"{a} vs {b} speedup" for a, b in pairs]
        fams = {}
        for b, c in self.rows():
            fams.setdefault(self.family[b], []).append((b, c))
        rows, raw = [], []
        for fam, members in fams.items():
            times = {bk: geomean([self.ms(rel, b, c, bk) for b, c in members]) for bk in cols}
            if all(t is None for t in times.values()):
                continue
            speed = {}
            for x, y in pairs:
                ratios = [self.ms(rel, b, c, y) / self.ms(rel, b, c, x) for b, c in members
                          if self.ms(rel, b, c, x) and self.ms(rel, b, c, y)]
                speed[f"{x} vs {y}"] = geomean(ratios)
            rows.append([fam] + [fmt_ms(times[bk]) for bk in cols] + [fmt_x(v) for v in speed.values()])
            raw.append({"family": fam, "cases": len(members), "geomean_ms": times, "speedups": speed})
        return headers, rows, raw

    def changes(self):
        """Per (bench, case, backend): values per release, change vs the previous
        selected release with a value, and whether it is flagged."""
        out = []
        for b, c in self.rows():
            for bk in self.backends:
                if not any((r, b, c, bk) in self.res.points for r in self.releases):
                    continue
                prev = None
                entries = []
                for r in self.releases:
                    p = self.res.points.get((r, b, c, bk))
                    value = p["value"] * 1e3 if p and p["status"] == "ok" else None
                    e = {"release": r, "ms": value,
                         "status": p["status"] if p else "missing",
                         "change": None, "flag": None, "confirmed": None}
                    if value is not None and prev is not None:
                        pv, pp = prev
                        e["change"] = value / pv - 1
                        overlap = ci_overlap(pp["ci"], p["ci"])
                        e["confirmed"] = None if overlap is None else not overlap
                        if abs(e["change"]) >= self.threshold and overlap is not True:
                            e["flag"] = "slower" if e["change"] > 0 else "faster"
                    if value is not None:
                        prev = (value, p)
                    entries.append(e)
                out.append({"operation": self.label(b, c), "benchmark": b, "family": self.family[b],
                            "case": c, "backend": bk, "releases": entries})
        return out

    def release_table(self):
        headers = ["Operation", "backend"] + list(self.releases)
        rows = []
        for row in self.changes():
            cells = [row["operation"], row["backend"]]
            for e in row["releases"]:
                if e["ms"] is None:
                    cells.append({"missing": "", "skipped": "n/a"}.get(e["status"], e["status"]))
                    continue
                text = fmt_ms(e["ms"])
                if e["change"] is not None:
                    text += f" ({fmt_pct(e['change'])})"
                if e["flag"]:
                    mark = "▲" if e["flag"] == "slower" else "▼"
                    if e["confirmed"] is None:
                        mark += "?"
                    text = f"**{text} {mark}**"
                cells.append(text)
            rows.append(cells)
        return headers, rows

    def noise(self, changes=None):
        """Measured noise, per backend: the spread asv recorded inside each result
        (IQR / median of the samples) and the release-to-release changes. torch is
        pinned, so its changes are noise only (the control)."""
        changes = changes if changes is not None else self.changes()
        out = []
        for bk in self.backends:
            spreads = []
            for (r, b, c, k), p in self.res.points.items():
                if k != bk or r not in self.releases or b not in self.benches or p["status"] != "ok":
                    continue
                q25, q75 = p["q"]
                if _finite(q25) and _finite(q75) and p["value"] > 0 and (p["repeat"] or 0) > 1:
                    spreads.append((q75 - q25) / p["value"])
            deltas, flagged = [], 0
            for row in changes:
                if row["backend"] != bk:
                    continue
                for e in row["releases"]:
                    if e["change"] is not None:
                        deltas.append(abs(e["change"]))
                        flagged += bool(e["flag"])
            if not spreads and not deltas:
                continue
            out.append({
                "backend": bk, "control": bk.startswith(CONTROL_PREFIX),
                "results": len(spreads), "median_iqr": statistics.median(spreads) if spreads else None,
                "changes": len(deltas),
                "median_change": statistics.median(deltas) if deltas else None,
                "p90_change": _quantile(deltas, 0.9) if deltas else None,
                "flagged": flagged,
            })
        return out

    # -- header --

    def header(self):
        m = self.res.machine_info
        info = self.res.release_info[self.release]
        req = dict(info["requirements"])
        torch = req.get("torch")
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
            "requirements": req, "env_names": sorted(e for e in info["env_names"] if e),
            "settings": settings,
        }


def _quantile(values, q):
    values = sorted(values)
    if not values:
        return None
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def md_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        cells = []
        for i, (v, w) in enumerate(zip(r, widths)):
            cells.append(str(v).ljust(w) if i == 0 or (i == 1 and headers[1] == "backend")
                         else str(v).rjust(w))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_families(report, folder):
    """Write one PNG per op family; return [(family, path)]."""
    from reporting import plots

    os.makedirs(folder, exist_ok=True)
    by_family = {}
    for row in report.changes():
        by_family.setdefault(row["family"], []).append(row)
    written = []
    for fam, rows in by_family.items():
        series = [{"backend": r["backend"], "case": r["case"],
                   "values": [e["ms"] for e in r["releases"]]} for r in rows]
        if not any(v is not None for s in series for v in s["values"]):
            continue
        png = plots.line_plot(f"{fam}: time vs MLX release", report.releases, series)
        path = os.path.join(folder, "plot_" + re.sub(r"[^A-Za-z0-9_.-]", "_", fam) + ".png")
        with open(path, "wb") as f:
            f.write(png)
        written.append((fam, path))
    return written


def markdown(report, plot_links=()):
    h = report.header()
    out = [f"# MLX vs PyTorch: asv results on `{h['machine']}`", ""]
    out += [
        f"- **Machine**: `{h['machine']}`: CPU {h['cpu']} ({h['num_cpu']} cores, {h['arch']}), "
        f"RAM {h['ram']}; GPU: {h['gpu']}; OS {h['os']}",
        f"- **MLX** {h['mlx']} (ledger commit `{h['commit'][:8]}`, tag {h['release']}); "
        f"**torch** {h['torch'] or 'not recorded'}; Python {h['python']}",
        f"- **asv environment**: {', '.join(f'`{e}`' for e in h['env_names']) or 'n/a'}",
        f"- **Releases with results**: {', '.join(report.res.releases())}; "
        f"in the release table: {', '.join(report.releases)}",
        "",
        "asv settings per benchmark (benchmarks.json) and the samples recorded for this release "
        "(`number x repeat`: calls per sample x samples; several where cases differ):",
        "",
        md_table(["Benchmark", "asv settings", "samples recorded"], h["settings"]),
        "",
    ]
    headers, rows, _ = report.detailed()
    out += [f"## Detailed benchmark, MLX {report.release} (ms)", "", md_table(headers, rows), "",
            "`n/a`: skipped (backend not on this machine, or not run); `failed`: asv recorded a "
            "failure.", "", SPEEDUP_NOTE, ""]
    headers, rows, _ = report.average()
    out += [f"## Average benchmark, MLX {report.release} (ms, geometric mean per family)", "",
            md_table(headers, rows), "", AVERAGE_NOTE, ""]
    changes = report.changes()
    headers, rows = report.release_table()
    thr = f"{report.threshold * 100:g}%"
    out += [f"## Across releases (ms, change from the previous release)", "", md_table(headers, rows), "",
            f"Each cell: time in ms and (in brackets) the change from the previous release shown "
            f"that has a result for that row. **Bold ▲** = slower, **bold ▼** = faster: the change is at "
            f"least the threshold, {thr} (asv.conf.json's `regressions_thresholds`, set with "
            f"`--threshold`), and the 99% confidence intervals asv recorded for the two results do not "
            f"overlap; `?` marks a flag that could not be checked that way (a result without an "
            f"interval, e.g. from `asv run --quick`, one sample).", ""]
    noise = report.noise(changes)
    if noise:
        rows = [[n["backend"] + (" (control)" if n["control"] else ""), n["results"],
                 fmt_pct(n["median_iqr"]).lstrip("+") if n["median_iqr"] is not None else "n/a",
                 n["changes"],
                 fmt_pct(n["median_change"]).lstrip("+") if n["median_change"] is not None else "n/a",
                 fmt_pct(n["p90_change"]).lstrip("+") if n["p90_change"] is not None else "n/a",
                 n["flagged"]] for n in noise]
        out += ["### Measured noise", "",
                md_table(["backend", "results", "median IQR/median", "changes",
                          "median abs change", "p90 abs change", f"flagged (>= {thr})"], rows), ""]
        out += [noise_verdict(noise, report.threshold), ""]
    if plot_links:
        out += ["## Plots (time vs MLX release, log scale)", ""]
        out += [f"- [{fam}]({path})" for fam, path in plot_links]
        out += [""]
    if report.skipped_benches:
        out += [f"Not in these tables (not timings): {', '.join(report.skipped_benches)}.", ""]
    return "\n".join(out)


def noise_verdict(noise, threshold):
    thr = f"{threshold * 100:g}%"
    lines = ["`IQR/median`: the spread of the samples inside one asv result (all results with more "
             "than one sample). `abs change`: the size of the release-to-release changes in the table above. torch is "
             "pinned (asv.conf.json), so a `torch_*` row does not depend on the MLX release: its "
             "changes are noise between runs, and its flags are false alarms (the control)."]
    control = [n for n in noise if n["control"] and n["changes"]]
    if control:
        total = sum(n["changes"] for n in control)
        flagged = sum(n["flagged"] for n in control)
        p90 = max(n["p90_change"] for n in control)
        if flagged / total > 0.1:
            lines.append(f"**Here the noise exceeds the threshold**: {flagged} of {total} control "
                         f"changes ({flagged / total:.0%}) are flagged at {thr}, and 90% of them are "
                         f"below {p90:.0%}. Flags on this machine are not evidence of a regression; "
                         f"re-run on a quiet machine, or raise `--threshold` to about {p90:.2f}.")
        else:
            lines.append(f"The control is quiet enough for the threshold: {flagged} of {total} control "
                         f"changes ({flagged / total:.0%}) are flagged at {thr} (p90 abs change {p90:.0%}).")
    return " ".join(lines)


def as_json(report, plot_links=()):
    _, _, detailed = report.detailed()
    _, _, average = report.average()
    changes = report.changes()
    header = report.header()
    header["settings"] = [dict(zip(("benchmark", "asv_settings", "samples_recorded"), s))
                          for s in header["settings"]]
    return json.dumps({
        "header": header, "threshold": report.threshold,
        "speedup_definition": SPEEDUP_NOTE, "average_definition": AVERAGE_NOTE,
        "detailed": detailed, "average": average, "releases": report.releases,
        "changes": changes, "noise": report.noise(changes),
        "plots": [{"family": f, "path": p} for f, p in plot_links],
    }, indent=1, default=str)


def as_csv(report, table="long"):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if table == "detailed":
        headers, _, raw = report.detailed()
        w.writerow(headers)
        for r in raw:
            w.writerow([r["operation"]] + [_num(r["times_ms"][b]) for b in headers[1:1 + len(r["times_ms"])]]
                       + [_num(v) for v in r["speedups"].values()])
    elif table == "average":
        headers, _, raw = report.average()
        w.writerow(headers)
        for r in raw:
            w.writerow([r["family"]] + [_num(v) for v in r["geomean_ms"].values()]
                       + [_num(v) for v in r["speedups"].values()])
    else:  # long: one row per release x case x backend
        w.writerow(["release", "benchmark", "operation", "backend", "ms", "status",
                    "change_vs_previous", "flag", "ci_confirmed"])
        for row in report.changes():
            for e in row["releases"]:
                if e["status"] == "missing":
                    continue
                w.writerow([e["release"], row["benchmark"], row["operation"], row["backend"],
                            _num(e["ms"]), e["status"], _num(e["change"]), e["flag"] or "",
                            "" if e["confirmed"] is None else str(e["confirmed"]).lower()])
    return buf.getvalue()


def _num(v):
    return "" if v is None else f"{v:.6g}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=os.path.join(ROOT, "results"), help="asv results folder")
    ap.add_argument("--ledger", default=None, help="release ledger (default: ledger/, or built offline)")
    ap.add_argument("--machine", help="asv machine name (default: the only one, or the most recent)")
    ap.add_argument("--release", help="release of the detailed/average tables (default: newest shown)")
    ap.add_argument("--releases", default="all",
                    help="releases of the release table: all, v0.32.2,v0.32.4 or v0.30.0..v0.32.4 (inclusive)")
    ap.add_argument("--bench", "-b", help="regex on benchmark name, family or 'Family / case'")
    ap.add_argument("--backends", help="comma-separated backends (default: all with results)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help="flag changes of at least this fraction (default 0.10)")
    ap.add_argument("--format", choices=("md", "csv", "json"), default="md")
    ap.add_argument("--table", choices=("long", "detailed", "average"), default="long",
                    help="with --format csv: which table")
    ap.add_argument("--plots", metavar="DIR", help="write one PNG per op family to DIR and link them")
    args = ap.parse_args(argv)
    try:
        if not args.threshold > 0:
            raise ReportError(f"--threshold must be a positive fraction, e.g. 0.1 (got {args.threshold})")
        res = Results(args.results, machine=args.machine, ledger_dir=args.ledger)
        report = Report(res, release=args.release, releases=args.releases, bench=args.bench,
                        backends=args.backends, threshold=args.threshold)
        report.detailed()  # validates that the selection has data
        links = plot_families(report, args.plots) if args.plots else []
        if args.format == "json":
            text = as_json(report, links)
        elif args.format == "csv":
            text = as_csv(report, args.table)
        else:
            text = markdown(report, links)
    except ReportError as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
