#!/usr/bin/env python3
"""Add benchmarks a reference results file lacks from another asv results file of the same release.

    python -m mlx_asv.gpu.merge_results REFERENCE.json NEW.json --bench '^device\\.'

Every benchmark of NEW.json whose name matches ``--bench`` (re.search) and
that REFERENCE.json does not hold is copied into it, row as asv wrote it, and
the file is written back with asv's own JSON writer (``asv.util.write_json``,
as asv writes results), so every row already there stays byte-identical
(checked: the file is re-read and each earlier row compared). A benchmark
REFERENCE.json already holds is never replaced; files of different commits,
or with different result columns, are refused with one line (exit 2).
Used to republish the H200/H100 history with the device measure (issue 27).
"""

from __future__ import annotations

import json
import re
import sys

from mlx_asv import cli


def merge(ref, new, pattern):
    """(merged data, [added names]); ``ref`` and ``new`` are parsed asv results files."""
    if ref["commit_hash"] != new["commit_hash"]:
        raise ValueError(f"the files record different commits ({ref['commit_hash'][:8]}, {new['commit_hash'][:8]})")
    if ref["result_columns"] != new["result_columns"]:
        raise ValueError("the files' result columns differ")
    rx = re.compile(pattern)
    added = sorted(b for b in new["results"] if rx.search(b) and b not in ref["results"])
    out = dict(ref, results=dict(ref["results"]))
    for b in added:
        out["results"][b] = new["results"][b]
    return out, added


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("reference")
    ap.add_argument("new")
    ap.add_argument("--bench", required=True, help="regex of the benchmark names to add")
    a = ap.parse_args(argv)
    from asv import util

    try:
        with open(a.reference, encoding="utf-8") as f:
            ref = json.load(f)
        with open(a.new, encoding="utf-8") as f:
            new = json.load(f)
        out, added = merge(ref, new, a.bench)
    except (OSError, ValueError, KeyError) as e:
        print(f"merge_results: {e}", file=sys.stderr)
        return 2
    util.write_json(a.reference, out, api_version=ref["version"], compact=True)
    with open(a.reference, encoding="utf-8") as f:
        back = json.load(f)
    changed = [b for b in ref["results"] if back["results"].get(b) != ref["results"][b]]
    if changed:
        print(f"merge_results: rows changed on writing: {changed[:3]}", file=sys.stderr)
        return 1
    print(f"merge_results: added {len(added)} benchmarks to {a.reference}: {', '.join(added)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
