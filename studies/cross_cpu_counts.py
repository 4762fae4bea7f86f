#!/usr/bin/env python3
"""Issue 25: do callgrind's instruction counts of one MLX CPU wheel agree between two CPUs?

studies/xcpu/build.sh packs this machine's interpreter (Python 3.11.7), its libraries (glibc,
libstdc++, the dynamic loader), MLX 0.32.4's CPU wheel, NumPy, valgrind 3.19's callgrind and the
benchmarks into one folder, /tmp/xcpu; studies/xcpu/run.sh counts a list of cases in one callgrind
process with exactly those files (the bundle's loader runs the bundle's python, ``env -i``,
``setarch -R`` where it works), so two machines differ only in their CPU and kernel.
studies/xcpu/go3.sh runs the three processes of five cases twice on the device machine.

    python -m studies.cross_cpu_counts HERE_DIR THERE_DIR [--top 8]

Each DIR holds ``repR-pI/`` folders (run.sh's output). Printed: per case, the total of each run on
each machine, the largest relative difference between the machines and within each; the same for
the instructions of libmlx's own functions (their self counts; what MLX's code executed, whatever
Python and glibc did around it), per library, and the functions that differ most.
"""

from __future__ import annotations

import collections
import glob
import os
import sys

from benchmarks.lib import counting
from mlx_asv import cli


def library(fn):
    """'name [/path/libmlx.so]' -> 'libmlx.so'"""
    if fn.endswith("]") and " [" in fn:
        return os.path.basename(fn[fn.rindex(" [") + 2:-1])
    return "?"


def read_runs(folder):
    """{case key: {rep: {"total": n, "functions": {...}}}} or {"error": why}."""
    out = collections.defaultdict(dict)
    for sub in sorted(glob.glob(os.path.join(folder, "rep*-p*"))):
        rep = os.path.basename(sub).split("-")[0]
        for key, row in counting.read_process(sub, keep=10 ** 7).items():
            if "counts" in row and row["counts"]:
                out[key][rep] = {"total": row["counts"][0], "functions": row["functions"]}
            else:
                out[key][rep] = {"error": row.get("error") or row.get("skip")}
    return out


def rel(a, b):
    return abs(a - b) / max(min(a, b), 1)


def by_library(functions):
    libs = collections.Counter()
    for fn, n in functions.items():
        libs[library(fn)] += n
    return libs


def compare(here, there, top=8):
    a, b = read_runs(here), read_runs(there)
    lines = ["| case | here (runs) | there (runs) | here/there - 1, total | within here | within there | "
             "libmlx.so self: here | there | difference |", "|---|---|---|---|---|---|---|---|---|"]
    detail, worst = [], []
    for key in sorted(set(a) | set(b)):
        ra, rb = a.get(key, {}), b.get(key, {})
        err = sorted({f"{side}: {(str(r.get('error')).splitlines() or [''])[0][:160]}"
                      for side, runs in (("here", ra), ("there", rb)) for r in runs.values() if "error" in r})
        if err or not ra or not rb:
            lines.append(f"| {key} | {'; '.join(err) or 'missing on one side'} ||||||||")
            continue
        ta = [r["total"] for _, r in sorted(ra.items())]
        tb = [r["total"] for _, r in sorted(rb.items())]
        ma = [by_library(r["functions"])["libmlx.so"] for _, r in sorted(ra.items())]
        mb = [by_library(r["functions"])["libmlx.so"] for _, r in sorted(rb.items())]
        d_total = max(rel(x, y) for x in ta for y in tb)
        d_mlx = max(rel(x, y) for x in ma for y in mb)
        worst.append((d_total, key, min(ta)))
        lines.append(f"| {key} | {', '.join(f'{x:,}' for x in ta)} | {', '.join(f'{x:,}' for x in tb)} | "
                     f"{100 * (ta[0] / tb[0] - 1):+.4f}% (largest {100 * d_total:.4f}%) | "
                     f"{100 * max(rel(x, ta[0]) for x in ta):.4f}% | {100 * max(rel(x, tb[0]) for x in tb):.4f}% | "
                     f"{', '.join(f'{x:,}' for x in ma)} | {', '.join(f'{x:,}' for x in mb)} | {100 * d_mlx:.4f}% |")
        fa, fb = next(iter(ra.values()))["functions"], next(iter(rb.values()))["functions"]
        la, lb = by_library(fa), by_library(fb)
        libs = [f"{lib} {la[lib]:,} / {lb[lib]:,}" for lib in sorted(set(la) | set(lb), key=lambda x: -la[x] - lb[x])
                if la[lib] != lb[lib]][:6]
        ch = [f"{n[:90]}: {x:,} / {y:,}" for n, x, y in counting.callgrind.function_changes(fa, fb, top=top)]
        detail.append(f"- {key}: libraries that differ (here / there): {'; '.join(libs) or 'none'}"
                      + (f"\n  - functions: " + "\n  - functions: ".join(ch) if ch else ""))
    big = [w for w in worst if w[2] >= 1_000_000]
    lines.append("")
    if worst:
        d, key, _ = max(worst)
        lines.append(f"Largest relative difference of a total between the machines: {100 * d:.4f}% ({key}); "
                     f"over the {len(big)} cases of 1 M instructions or more: "
                     f"{100 * max(w[0] for w in big):.4f}%" if big else "")
    return "\n".join(lines + ["", "First run's per-library and per-function differences:"] + detail) + "\n"


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("here")
    ap.add_argument("there")
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args(argv)
    print(compare(a.here, a.there, a.top), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
