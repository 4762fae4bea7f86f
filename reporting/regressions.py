"""The site's regressions page lists what the verdicts confirm, not asv's raw steps.

``asv publish`` writes ``html/regressions.json`` from its own step detection
over the graphs: every step past ``regressions_thresholds``, whatever the
noise, so a fresh clone's first site listed pinned torch rows as "1.56x
slower". After ``asv publish`` this keeps a step only where a same-run
session (the main job's or the gate's, reporting/sessions.py) measured both
commits of the step and its verdict is "slower"; the others are dropped, and
counted in ``html/regressions-filtered.json`` with the reason, so nothing is
lost silently.

    python -m reporting.regressions            # after asv publish (the main job runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from reporting import verdicts as vd  # noqa: E402
from reporting.sessions import Sessions  # noqa: E402
from tools import ledger  # noqa: E402


def parent(commit, repo):
    return ledger._git(repo, "rev-parse", "-q", "--verify", f"{commit}^", check=False).strip() or None


def filter_regressions(html_dir, sessions, repo=ledger.DEFAULT_REPO):
    """Rewrite ``html_dir/regressions.json`` to the verdict-confirmed steps.

    Returns (kept, dropped): lists of (entry name, commit before, commit after, why).
    """
    path = os.path.join(html_dir, "regressions.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    with open(os.path.join(html_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    rev_to_hash = {int(r): h for r, h in index.get("revision_to_hash", {}).items()}
    kept_entries, kept, dropped = [], [], []
    for entry in data.get("regressions", []):
        name, graph_path, params, j, last_v, best_v, jumps = entry
        good = []
        for jump in jumps:
            rev_a, rev_b = jump[0], jump[1]
            after = rev_to_hash.get(rev_b)
            before = rev_to_hash.get(rev_a) if rev_a is not None else parent(after, repo) if after else None
            verdicts, where = sessions.verdicts(before, after) if before and after else ({}, None)
            v = verdicts.get(name)
            if v is not None and v.verdict == vd.SLOWER:
                good.append(jump)
                kept.append((name, before, after, f"slower {v.ratio:.2f}x [{v.lo:.2f}-{v.hi:.2f}], same run "
                                                  f"({os.path.relpath(where, ROOT)}), {v.evidence()}"))
            else:
                why = (f"same run, verdict {v.verdict} ({v.ratio:.2f}x [{v.lo:.2f}-{v.hi:.2f}])" if v is not None
                       else "cross-run: no session measured both releases; confirm with tools/gate.py")
                dropped.append((name, before, after, why))
        if good:
            kept_entries.append([name, graph_path, params, j, last_v, best_v, good])
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"regressions": kept_entries}, f, separators=(",", ":"))
    with open(os.path.join(html_dir, "regressions-filtered.json"), "w", encoding="utf-8") as f:
        json.dump({"kept": kept, "dropped": dropped}, f, indent=1)
    return kept, dropped


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", default=os.path.join(ROOT, "html"))
    args = ap.parse_args(argv)
    if not os.path.exists(os.path.join(args.html, "regressions.json")):
        print(f"regressions: no {args.html}/regressions.json: run asv publish first", file=sys.stderr)
        return 2
    kept, dropped = filter_regressions(args.html, Sessions())
    print(f"regressions page: {len(kept)} step(s) confirmed by a same-run verdict kept, "
          f"{len(dropped)} of asv's step(s) dropped (reasons in {args.html}/regressions-filtered.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
