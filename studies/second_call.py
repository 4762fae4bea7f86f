#!/usr/bin/env python3
"""Issue 25: how far is a case's second call from its steady state, in instructions?

The counting child (benchmarks/lib/count_child.py) counts a case's second call
where it executes ``STEADY_INSTRUCTIONS`` or more, and its third otherwise: the
second still does one-time work (compiled functions' caches, the first op of a
process). This study measures that work: for every case, one callgrind
process a release counts calls 2 and 3 (call 1 is the build's), and it prints
|call 2 / call 3 - 1| per case and its largest value by size of call.

    python -m studies.second_call v0.32.3 v0.32.4 -b REGEX --out DIR
    python -m studies.second_call --show DIR

Run from the repository root (the releases install as tools/instructions.py's
do). Measured: docs/work-verdicts.md ("Which call is counted").
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

from benchmarks.lib import callgrind, counting

SIZES = (1_000_000, 10_000_000, 100_000_000)


def child(cases_path, calls, marks_path):
    """In the counting process: calls 2 and 3 of each case, dumped as <key>#2, <key>#3."""
    from benchmarks import ops

    marks = ctypes.CDLL(marks_path)
    marks.dump.argtypes = [ctypes.c_char_p]
    with open(cases_path, encoding="utf-8") as f:
        todo = json.load(f)
    for key, family, label, backend in todo:
        try:
            fn = getattr(ops, family).callable(label, backend)
        except NotImplementedError:
            continue
        marks.start()
        for k in (2, 3):
            marks.zero()
            fn()
            marks.dump(f"{key}#{k}".encode())
        marks.stop()
        print(json.dumps({"key": key, "done": 2}), flush=True)
    return 0


def read(folder):
    """{key: {2: instructions, 3: instructions}} of one process's dumps."""
    got = {}
    for name in os.listdir(folder):
        if name.startswith("callgrind.") and name.count(".") == 2:
            dump = callgrind.read(os.path.join(folder, name))
            key, _, k = (dump["name"] or "").rpartition("#")
            if k in ("2", "3"):
                got.setdefault(key, {})[int(k)] = dump["total"]
    return got


def table(out):
    """Lines: per release, each case's call 2 against call 3, and the largest
    difference among the cases of each size."""
    lines = []
    for name in sorted(os.listdir(out)):
        folder = os.path.join(out, name)
        if not os.path.isdir(folder):
            continue
        rows = sorted(((c[3], c[2] / c[3] - 1, key) for key, c in read(folder).items() if 2 in c and 3 in c),
                      reverse=True)
        lines.append(f"{name}: {len(rows)} cases (call 2 / call 3 - 1, call 3's instructions)")
        for n3, diff, key in rows:
            lines.append(f"  {diff:+9.3%}  {n3:>15,}  {key}")
        for size in SIZES:
            worst = max((abs(d) for n3, d, _ in rows if n3 >= size), default=None)
            if worst is not None:
                lines.append(f"  cases of {size:,} instructions or more: largest difference {worst:.3%}")
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], int(argv[2]), argv[3])
    from mlx_asv import cli
    from mlx_asv.decide import instructions
    from mlx_asv.measure import protocol

    p = cli.parser(__doc__)
    p.add_argument("names", nargs="*", help="ledger names, e.g. v0.32.3 v0.32.4")
    p.add_argument("-b", "--bench", help="regex over the cases' asv names (default: every ops.py case)")
    p.add_argument("--out", help="folder for the processes' dumps")
    p.add_argument("--show", metavar="DIR", help="a finished run's folder: its table again")
    args = p.parse_args(argv)
    if args.show:
        print("\n".join(table(args.show)))
        return 0
    if not args.names or not args.out:
        p.error("give the releases and --out (or --show DIR)")
    todo = instructions.cases(args.bench)
    if not todo:
        p.error(f"no ops.py case matches {args.bench!r}")
    instructions.check_tools()
    marks = instructions.marks_library()
    pythons = {name: instructions.side_env(protocol.resolve(name)) for name in args.names}
    counting.run_processes(
        [(name, todo, os.path.join(args.out, name)) for name in args.names],
        start=lambda name, cases, sub: counting.launch(pythons[name], cases, sub, 2, marks,
                                                       child=("-m", "studies.second_call", "--child")),
        read=lambda sub: {key: {"counts": [c.get(2), c.get(3)]} for key, c in read(sub).items()})
    print("\n".join(table(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
