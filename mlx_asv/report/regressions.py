"""The site's regressions page lists what the verdicts confirm, not asv's raw steps.

``asv publish`` writes ``html/regressions.json`` from its own step detection
over the graphs: every step past ``regressions_thresholds``, whatever the
noise, so a fresh clone's first site listed pinned torch rows as "1.56x
slower". After ``asv publish`` this keeps a step only where a same-run
session (the main job's or the gate's, mlx_asv/report/sessions.py) measured both
commits of the step and its verdict is "slower"; the others are dropped, and
counted in ``html/regressions-filtered.json`` with the reason, so nothing is
lost silently. A slowdown that a session confirmed and asv's own detection
missed (measured: the main job's ScatterSum 1.11x, two points asv did not
call a step) is added, on this machine's graph of the case, where that
graph has both releases as neighbouring points: the page lists what the
verdicts confirm. asv's Atom feed of the steps (``html/regressions.xml``) is
written again from the page, by asv's own feed writer.

    python -m reporting.regressions            # after asv publish (the main job runs it)
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys

from benchmarks.lib import counting
from mlx_asv.decide import verdicts as vd
from mlx_asv.report import count_history
from mlx_asv.report.sessions import Sessions
from mlx_asv.envs import ledger
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parent(commit, repo):
    return ledger.git(repo, "rev-parse", "-q", "--verify", f"{commit}^", check=False).strip() or None


def local_machine():
    """asv's name for this machine (the sessions' results are filed under it)."""
    try:
        from asv.machine import Machine
    except ImportError:
        return socket.gethostname()
    return Machine.get_unique_machine_name()


def graph_entry(html_dir, index, machine, key, before, after):
    """asv's regressions entry for a step of case ``key`` from commit
    ``before`` to ``after`` on ``machine``'s graph of the main branch:
    [name, graph path, graph params, index of the case's parameters, last
    value, best value, [[revision before or None, revision after, value,
    value]]]; None where the graph lacks either commit, or has a point
    between them."""
    from asv.graph import Graph

    bench = key.split("(", 1)[0]
    info = index.get("benchmarks", {}).get(bench)
    if not info:
        return None
    combos = [f"{bench}({', '.join(c)})" for c in itertools.product(*info.get("params") or [])] or [bench]
    if key not in combos:
        return None
    j = combos.index(key) if info.get("params") else None
    hash_to_rev = {h: int(r) for r, h in index.get("revision_to_hash", {}).items()}
    rev_a, rev_b = hash_to_rev.get(before), hash_to_rev.get(after)
    if rev_a is None or rev_b is None:
        return None
    varying = {name for name, values in index.get("params", {}).items() if len(values) > 1}
    for params in index.get("graph_param_list", []):
        if params.get("machine") != machine or params.get("branch") not in (None, "main"):
            continue
        path = Graph.get_file_path(params, bench) + ".json"
        try:
            with open(os.path.join(html_dir, path), encoding="utf-8") as f:
                points = json.load(f)
        except (OSError, ValueError):
            continue
        values = {rev: (v[j] if j is not None else v) for rev, v in points
                  if (v[j] if j is not None else v) is not None}
        if rev_a not in values or rev_b not in values or any(rev_a < r < rev_b for r in values):
            continue
        last = values[max(values)]
        return [key, path, {k: v for k, v in params.items() if k in varying}, j, last, min(values.values()),
                [[rev_a, rev_b, values[rev_a], values[rev_b]]]]
    return None


def work_step(name, before, after, jump, work_steps):
    """Is a step in an instruction-count graph more work past the work
    verdict's threshold? -> (kept, why), with the function that changed
    most where a count history (count-steps.txt) names it."""
    a, b = jump[2], jump[3]
    if not a or b is None:
        return False, "no count on one side"
    v = vd.decide_counts(name, [a], [b])  # the work verdict's own rule and threshold
    if v.verdict != vd.SLOWER:
        return False, (f"{v.ratio:.4f}x instructions, within the work threshold "
                       f"({100 * vd.work_threshold(a, name):g}%)")
    known = work_steps.get((name, before, after))
    if known:
        return True, count_history.step_text(known[1])
    return True, f"{v.ratio:.3f}x instructions (more), past the work threshold ({100 * vd.work_threshold(a, name):g}%)"


def filter_regressions(html_dir, sessions, repo=ledger.DEFAULT_REPO, machine=None,
                       results_dir=os.path.join(ROOT, "results")):
    """Rewrite ``html_dir/regressions.json`` to the verdict-confirmed steps,
    adding the confirmed slowdowns asv's detection missed (on ``machine``'s
    graphs, default this machine's).

    Returns (kept, dropped): lists of (entry name, commit before, commit after, why).
    """
    path = os.path.join(html_dir, "regressions.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    with open(os.path.join(html_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    rev_to_hash = {int(r): h for r, h in index.get("revision_to_hash", {}).items()}
    kept_entries, kept, dropped = [], [], []
    work_steps = count_history.load_steps(results_dir)
    for entry in data.get("regressions", []):
        name, graph_path, params, j, last_v, best_v, jumps = entry
        good = []
        for jump in jumps:
            rev_a, rev_b = jump[0], jump[1]
            after = rev_to_hash.get(rev_b)
            before = rev_to_hash.get(rev_a) if rev_a is not None else parent(after, repo) if after else None
            if counting.is_work_benchmark(name):
                # A count is deterministic for its build: the step is its own
                # verdict, past the work threshold (the A/A spread of counts).
                ok, why = work_step(name, before, after, jump, work_steps)
                if ok:
                    good.append(jump)
                    kept.append((name, before, after, why))
                else:
                    dropped.append((name, before, after, why))
                continue
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
    machine = machine or local_machine()
    listed = {(k[0], k[1], k[2]) for k in kept}
    for _, data in sessions.sessions:
        commits = data.get("commits", [])
        for before, after in zip(commits, commits[1:]):
            verdicts, where = sessions.verdicts(before, after)
            for name, v in sorted(verdicts.items()):
                if v.verdict != vd.SLOWER or (name, before, after) in listed:
                    continue
                entry = graph_entry(html_dir, index, machine, name, before, after)
                if entry is None:
                    continue
                if parent(after, repo) == before:
                    entry[6][0][0] = None  # as asv writes a step of one commit
                kept_entries.append(entry)
                listed.add((name, before, after))
                kept.append((name, before, after, f"slower {v.ratio:.2f}x [{v.lo:.2f}-{v.hi:.2f}], same run "
                                                  f"({os.path.relpath(where, ROOT)}), {v.evidence()}; "
                                                  f"not among asv's steps: added"))
    for (name, before, after), (step_machine, step) in sorted(work_steps.items()):
        if step["verdict"] != vd.work_word(vd.SLOWER) or (name, before, after) in listed:
            continue
        entry = graph_entry(html_dir, index, step_machine, name, before, after)
        if entry is None:
            continue
        kept_entries.append(entry)
        listed.add((name, before, after))
        kept.append((name, before, after, f"{count_history.step_text(step)}; not among asv's steps: added"))
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"regressions": kept_entries}, f, separators=(",", ":"))
    with open(os.path.join(html_dir, "regressions-filtered.json"), "w", encoding="utf-8") as f:
        json.dump({"kept": kept, "dropped": dropped}, f, indent=1)
    return kept, dropped


def rewrite_feed(html_dir, config=os.path.join(ROOT, "asv.conf.json")):
    """asv's feed (regressions.xml) of the steps now on the page, written by
    asv's own feed writer (a private method of its regressions plugin)."""
    from asv.benchmarks import Benchmarks
    from asv.config import Config
    from asv.plugins.regressions import Regressions

    conf = Config.load(config)
    conf.html_dir = html_dir
    # asv reads results_dir from where it runs; here, from the config's folder
    conf.results_dir = os.path.join(os.path.dirname(os.path.abspath(config)), conf.results_dir)
    with open(os.path.join(html_dir, "index.json"), encoding="utf-8") as f:
        rev_to_hash = {int(r): h for r, h in json.load(f).get("revision_to_hash", {}).items()}
    with open(os.path.join(html_dir, "regressions.json"), encoding="utf-8") as f:
        entries = json.load(f)["regressions"]
    Regressions._save_feed(conf, Benchmarks.load(conf), entries, {h: r for r, h in rev_to_hash.items()},
                           rev_to_hash)


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("--html", default=os.path.join(ROOT, "html"))
    args = ap.parse_args(argv)
    if not os.path.exists(os.path.join(args.html, "regressions.json")):
        print(f"regressions: no {args.html}/regressions.json: run asv publish first", file=sys.stderr)
        return 2
    kept, dropped = filter_regressions(args.html, Sessions())
    added = sum(1 for k in kept if k[3].endswith("added"))
    print(f"regressions page: {len(kept)} step(s) confirmed by a same-run verdict listed ({added} of them "
          f"missed by asv's detection, added), {len(dropped)} of asv's step(s) dropped (reasons in "
          f"{args.html}/regressions-filtered.json)")
    try:
        rewrite_feed(args.html)
    except Exception as e:  # asv's private writer or its inputs changed: say so, in one line
        print(f"regressions: {args.html}/regressions.xml could not be written again from the page, so it still "
              f"lists asv's raw steps ({type(e).__name__}: {e})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
