#!/usr/bin/env python3
"""Which release made it slower? Steps over a release series, in one interleaved session.

    python tools/steps.py v0.21.1 v0.25.2 v0.26.3 v0.32.4 -b '^ops\\.Softmax\\.'
    python tools/steps.py v0.29.0..v0.32.4 -b '^ops\\.(Sum|LayerNorm)\\.' --rounds 3

The releases (a list, or an inclusive range A..B of the ledger's releases)
are measured like every comparison here (mlx_asv/measure/protocol.py: one session,
rounds alternating in order, a fresh process per case and round, results in
``.asv/steps/<run>/``), on the backends this machine has unless ``-b`` says
otherwise. For each case, binary segmentation over the releases
(mlx_asv/decide/verdicts.py, ``locate_steps``: split where the two sides differ
most, keep the split if the moderated test's interval clears 2%, recurse)
attributes every step to one pair of adjacent releases, with the ratio and
its interval. Exit status 0; 2 on bad input, in one line.
"""

from __future__ import annotations

import json
import os
import re
import sys

from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import gate as gatemod
from mlx_asv.envs import ledger
from mlx_asv.measure import protocol
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("releases", nargs="+", help="releases in order, or a range A..B (inclusive)")
    ap.add_argument("-b", "--bench", help="asv -b regex (default: ops.py on this machine's backends)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    cli.add_format(ap)
    args = ap.parse_args(argv)
    log = lambda m: print(f"steps: {m}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        names = protocol.expand(args.releases)
        commits = [protocol.resolve(n) for n in names]
    except (ledger.LedgerError, protocol.ProtocolError) as e:
        print(f"steps: {e}", file=sys.stderr)
        return 2
    if args.bench:
        bench = protocol.family_on(args.bench, gatemod.detected_backends)
    else:
        bench = protocol.bench_regex(gatemod.detected_backends())
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{names[0]}-{names[-1]}")
    folder = os.path.join(ROOT, ".asv", "steps", f"{protocol.stamp()}-{safe}")
    session = protocol.Session(folder, commits, bench, log=log)
    try:
        for _ in range(args.rounds):
            session.round()
    except protocol.ProtocolError as e:
        print(f"steps: {e}", file=sys.stderr)
        return 2
    series = {k: (protocol.group_of(k), [(n, session.data[k].get(c, [])) for n, c in zip(names, commits)])
              for k in session.keys()}
    steps = vd.locate_steps(series)
    rows = []
    for key in session.keys():
        for s in steps[key]:
            rows.append(dict(key=key, before=s.before, after=s.after, verdict=s.verdict, ratio=s.ratio,
                             lo=s.lo, hi=s.hi, p=s.p))
        means = {}
        for n, c in zip(names, commits):
            obs = vd.process_observations(session.data[key].get(c, []))
            means[n] = (sum(obs) / len(obs)) if obs else None
        series[key] = means
    report = {"releases": names, "rounds": session.rounds, "bench": bench, "minutes": round(session.seconds / 60, 1),
              "steps": rows}
    with open(os.path.join(folder, "steps.json"), "w") as f:
        json.dump(report, f, indent=1)
    if args.format == "json":
        print(json.dumps(report, indent=1))
        return 0
    import math

    print(f"# Steps over {', '.join(names)}\n")
    print(f"{len(rows)} step(s) in {len(session.keys())} cases; {session.rounds} interleaved rounds in one session "
          f"({report['minutes']} min); binary segmentation with the moderated t-test, 99.9% intervals "
          f"(Bonferroni over the splits), a step must clear {100 * vd.MIN_EFFECT:g}%.\n")
    if rows:
        print("| case | step between | verdict | ratio | interval |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['key']} | {r['before']} -> {r['after']} | {r['verdict']} | {r['ratio']:.2f} | "
                  f"{r['lo']:.2f}-{r['hi']:.2f} |")
    print("\nTimes (geometric mean of the processes' fastest samples, ms):\n")
    print("| case | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key in session.keys():
        cells = [f"{1e3 * math.exp(m):.3g}" if m is not None else "n/a" for m in series[key].values()]
        print(f"| {key} | " + " | ".join(cells) + " |")
    log(f"kept in {os.path.relpath(folder, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
