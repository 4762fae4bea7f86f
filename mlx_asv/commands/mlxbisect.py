#!/usr/bin/env python3
"""Which MLX commit made it slower? Bisection over MLX's commits (or releases) with the gate's verdicts.

    python tools/mlxbisect.py v0.21.1 v0.25.2 -b '^ops\\.Softmax\\..*mlx_cpu' --source ~/mlx
    python tools/mlxbisect.py v0.21.1 v0.25.2 -b '^ops\\.Softmax\\.'          # the ledger's source (ledger.py --source)
    python tools/mlxbisect.py v0.29.0 v0.32.4 -b '^ops\\.Sigmoid\\.' --releases   # releases only: wheels, no builds

GOOD and BAD are MLX release tags. With a source (``--source``, $MLX_ASV_SOURCE
or ``python tools/ledger.py --source``), MLX's first-parent commits from GOOD
to BAD are added to the ledger as branch ``source/GOOD-BAD`` (tools/ledger.py),
GOOD's own commit first, so both ends are built from source alike; every
commit measured is built into a wheel once by tools/install.py (cached by
commit). With ``--releases``, the ledger's releases between them are bisected.

Each step measures the lower end, the midpoint and the upper end in one
session (mlx_asv/measure/protocol.py: interleaved rounds, a fresh process per case and
round) and decides, with the moderated test of mlx_asv/decide/verdicts.py, whether
the slowdown lies left of the midpoint (low -> mid slower, mid -> high not)
or right of it. An undecided step is measured again (more rounds, up to
``--max-rounds``) rather than guessed: noise can stop the bisection, with the
interval it narrowed down to, but not send it the wrong way at the
confidence of the verdicts (99.9% intervals, a change must clear 2%). The
first step also checks that BAD is slower than GOOD at all, and picks the
cases that are: the bisection follows those; a case whose slowdown lies on
the other side of a step is reported apart (it has another culprit).

(Not ``tools/bisect.py``: run as a script, that name would shadow Python's own
``bisect`` module, which ``random`` imports.)

Exit status: 0 when a commit is named, 3 when none can be (no slowdown between
the ends, or undecided within --max-rounds), 2 on bad input (one line).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys

from mlx_asv.decide import verdicts as vd
from mlx_asv.envs import ledger
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LEFT, RIGHT, BOTH, NEITHER, OPEN = "left", "right", "both", "neither", "open"


@dataclasses.dataclass
class Step:
    lo: int
    mid: int
    hi: int
    rounds: int
    direction: str  # LEFT or RIGHT (where the slowdown is), or OPEN (stopped)
    votes: dict  # {key: LEFT/RIGHT/BOTH/NEITHER/OPEN}
    left: dict  # {key: (verdict, ratio, lo, hi)} low -> mid
    right: dict  # mid -> high


@dataclasses.dataclass
class Result:
    culprit: int | None  # index into the commits: the first slower one
    good: int  # the last index known not to have it
    bad: int  # the first index known to have it
    keys: list  # the cases followed
    diverged: dict  # {key: step number where it went the other way}
    steps: list
    reason: str = ""


def _summary(v):
    return (v.verdict, v.ratio, v.lo, v.hi)


def _vote(left, right):
    ls, rs = left.verdict == vd.SLOWER, right.verdict == vd.SLOWER
    if ls and rs:
        return BOTH
    # One side confirmed slower (its 99.9% interval clears 2%) and the other not:
    # the step is on that side, as git bisect assumes one step between the ends.
    if ls:
        return LEFT
    if rs:
        return RIGHT
    if left.verdict == vd.SAME and right.verdict == vd.SAME:
        return NEITHER
    return OPEN


def decide_step(data, keys, lo, mid, hi, alpha=vd.ALPHA, min_effect=vd.MIN_EFFECT, same_within=vd.SAME_WITHIN):
    """({key: vote}, {key: left verdict}, {key: right verdict}, {key: ends verdict}) from one
    session's data ({key: {commit: [sample lists]}}); one prior over every comparison."""
    comps = []
    for k in keys:
        d = data.get(k, {})
        group = _group(k)
        comps += [vd.Comparison(("L", k), d.get(lo, []), d.get(mid, []), group),
                  vd.Comparison(("R", k), d.get(mid, []), d.get(hi, []), group),
                  vd.Comparison(("E", k), d.get(lo, []), d.get(hi, []), group)]
    verdicts = {v.key: v for v in vd.decide(comps, alpha=alpha, min_effect=min_effect, same_within=same_within)}
    left = {k: verdicts[("L", k)] for k in keys}
    right = {k: verdicts[("R", k)] for k in keys}
    ends = {k: verdicts[("E", k)] for k in keys}
    return {k: _vote(left[k], right[k]) for k in keys}, left, right, ends


def _group(key):
    from mlx_asv.measure import protocol

    return protocol.group_of(key)


def bisect(commits, measure, rounds=2, max_rounds=6, log=print, **verdict_args):
    """Bisect ``commits`` (oldest first; commits[0] good, commits[-1] bad) for
    the first commit that made the measured cases slower.

    ``measure(triple, keys, rounds)`` runs ``rounds`` more interleaved rounds
    over the three commits (``keys`` None: every case of the benchmark regex)
    and returns everything measured so far on that triple:
    ``{key: {commit: [sample lists, one per process]}}``.
    """
    lo, hi = 0, len(commits) - 1
    keys, diverged, steps = None, {}, []
    if hi < 1:
        return Result(None, lo, hi, [], {}, [], "need at least two commits")
    if hi == 1:
        # nothing between the ends: is the upper end slower at all?
        done = 0
        while True:
            data = measure(list(commits), None, rounds)
            done += rounds
            comps = [vd.Comparison(k, data[k].get(commits[0], []), data[k].get(commits[1], []), _group(k))
                     for k in sorted(data)]
            ends = {v.key: v for v in vd.decide(comps, **verdict_args)}
            if any(v.verdict == vd.UNDECIDED for v in ends.values()) and done < max_rounds:
                continue
            slower = [k for k, v in ends.items() if v.verdict == vd.SLOWER]
            if slower:
                return Result(1, 0, 1, slower, {}, [])
            return Result(None, 0, 1, [], {}, [], "no case is slower at the upper end than at the lower end")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        triple = [commits[lo], commits[mid], commits[hi]]
        done = 0
        data = measure(triple, keys, rounds)
        done += rounds
        while True:
            consider = keys if keys is not None else sorted(data)
            votes, left, right, ends = decide_step(data, consider, *triple, **verdict_args)
            if keys is None:
                # the first step: which cases are slower at BAD than at GOOD?
                slower = [k for k in consider if ends[k].verdict == vd.SLOWER]
                open_ends = [k for k in consider if ends[k].verdict == vd.UNDECIDED]
                if open_ends and done < max_rounds:
                    data = measure(triple, open_ends, rounds)
                    done += rounds
                    continue
                if not slower:
                    why = ("no case is slower at the upper end than at the lower end"
                           + (f" ({len(open_ends)} undecided after {done} rounds)" if open_ends else ""))
                    return Result(None, lo, hi, [], {}, steps, why)
                keys = slower
                log(f"bisect: {len(keys)} case(s) slower at the upper end: following them")
                votes = {k: votes[k] for k in keys}
            decided = [k for k in keys if votes[k] in (LEFT, RIGHT, BOTH)]
            pending = [k for k in keys if votes[k] == OPEN]
            if pending and done < max_rounds:
                data = measure(triple, pending, rounds)
                done += rounds
                continue
            break
        direction = _direction(votes, keys, left, right)
        steps.append(Step(lo, mid, hi, done, direction, dict(votes),
                          {k: _summary(left[k]) for k in keys}, {k: _summary(right[k]) for k in keys}))
        log(f"bisect: step {len(steps)}: [{lo}, {mid}, {hi}] of {len(commits)}: "
            f"{', '.join(f'{v} {sum(1 for k in keys if votes[k] == v)}' for v in (LEFT, RIGHT, BOTH, OPEN, NEITHER))}"
            f" -> {direction} ({done} rounds)")
        if direction == OPEN:
            return Result(None, lo, hi, keys, diverged, steps,
                          f"undecided after {done} rounds between {commits[lo][:10]} and {commits[hi][:10]}: "
                          f"the culprit is one of the {hi - lo} commits after the first")
        other = RIGHT if direction == LEFT else LEFT
        for k in keys:
            if votes[k] == other:
                diverged[k] = len(steps)
        keys = [k for k in keys if votes[k] != other]
        if direction == LEFT:
            hi = mid
        else:
            lo = mid
    return Result(hi, lo, hi, keys, diverged, steps)


def _direction(votes, keys, left, right):
    """Where most decided cases put the slowdown; a case slower on both sides
    (two steps) counts for the side with the larger ratio."""
    count = {LEFT: 0, RIGHT: 0}
    for k in keys:
        v = votes[k]
        if v == BOTH:
            v = LEFT if math.log(left[k].ratio) >= math.log(right[k].ratio) else RIGHT
        if v in count:
            count[v] += 1
    if not count[LEFT] and not count[RIGHT]:
        return OPEN
    return LEFT if count[LEFT] >= count[RIGHT] else RIGHT


# --------------------------------------------------------------------------
# Measuring with asv (mlx_asv/measure/protocol.py)
# --------------------------------------------------------------------------


def asv_measure(folder, bench, log):
    """A measure() for bisect(): one protocol.Session per triple of commits."""
    from mlx_asv.measure import protocol

    sessions = {}

    def measure(triple, keys, rounds):
        key = tuple(triple)
        if key not in sessions:
            prebuild(triple, log)
            sub = os.path.join(folder, f"step{len(sessions) + 1}-" + "-".join(c[:8] for c in triple))
            sessions[key] = protocol.Session(sub, list(triple), bench, log=log)
        s = sessions[key]
        for _ in range(rounds):
            s.round(keys)
        return s.data

    return measure


def prebuild(commits, log, repo=ledger.DEFAULT_REPO):
    """Build the wheels of the source commits among ``commits`` before asv
    runs: a cold MLX build takes longer than asv's install_timeout (900 s);
    asv's install then takes the cached wheel in seconds."""
    from mlx_asv.envs import install, mlxsource

    for c in commits:
        about = ledger.read_source_text(ledger.git(repo, "show", f"{c}:{ledger.SOURCE_FILE}", check=False))
        if not about.get("commit"):
            continue
        try:
            source = install.source_repo_for(about, ledger_dir=repo)
            mlxsource.build_wheel(mlxsource.local_repo(source, log=log), about["commit"], log=log)
        except (install.InstallError, mlxsource.SourceError) as e:
            from mlx_asv.measure import protocol

            raise protocol.ProtocolError(str(e)) from None


def ledger_chain(good, bad, source=None, releases=False, name=None, repo=ledger.DEFAULT_REPO, log=print):
    """The ledger commits to bisect, oldest first, and a label for each."""
    if releases or not source:
        built = ledger.ensure(repo=repo, log=log)
        tags = [r.tag for r, _ in built]
        for t in (good, bad):
            if t not in tags:
                raise ledger.LedgerError(f"{t} is not a release of the ledger (newest: {tags[-1]})")
        i, j = tags.index(good), tags.index(bad)
        if j <= i:
            raise ledger.LedgerError(f"{bad} is not after {good}")
        return [c for _, c in built[i:j + 1]], tags[i:j + 1]
    ledger.ensure(repo=repo, log=log)
    added = ledger.add_source_range(source, good, bad, name=name, repo=repo, log=log)
    return [c for c, _, _ in added], [f"{s[:10]} ({v})" for _, s, v in added]


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("good", help="the release without the slowdown (e.g. v0.21.1)")
    ap.add_argument("bad", help="the release with it (e.g. v0.25.2)")
    ap.add_argument("-b", "--bench", required=True, help="asv -b regex of the cases (e.g. '^ops\\.Softmax\\.')")
    ap.add_argument("--source", help="MLX repository (default $MLX_ASV_SOURCE, or the ledger's --source)")
    ap.add_argument("--releases", action="store_true", help="bisect the ledger's releases only (no builds)")
    ap.add_argument("--name", help="the source branch's name (default GOOD-BAD)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per measurement (default 2)")
    ap.add_argument("--max-rounds", type=int, default=6, help="rounds per step before giving up (default 6)")
    cli.add_format(ap)
    args = ap.parse_args(argv)
    log = lambda m: print(m if m.startswith("bisect:") else f"bisect: {m}", file=sys.stderr, flush=True)  # noqa: E731
    from mlx_asv.decide import gate as gatemod
    from mlx_asv.measure import protocol

    source = None if args.releases else (args.source or ledger.configured_source())
    try:
        commits, labels = ledger_chain(args.good, args.bad, source=source, releases=args.releases,
                                       name=args.name, log=log)
    except ledger.LedgerError as e:
        print(f"bisect: {e}", file=sys.stderr)
        return 2
    bench = protocol.family_on(args.bench, gatemod.detected_backends)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{args.good}-{args.bad}")
    folder = os.path.join(ROOT, ".asv", "bisect", f"{protocol.stamp()}-{safe}")
    log(f"{len(commits)} commits from {labels[0]} to {labels[-1]}; about {math.ceil(math.log2(len(commits)))} "
        f"steps; kept in {os.path.relpath(folder, ROOT)}")
    try:
        result = bisect(commits, asv_measure(folder, bench, log), rounds=args.rounds,
                        max_rounds=args.max_rounds, log=log)
    except protocol.ProtocolError as e:
        print(f"bisect: {e}", file=sys.stderr)
        return 2
    report = {"good": args.good, "bad": args.bad, "bench": bench, "commits": len(commits),
              "culprit": None, "reason": result.reason, "keys": result.keys, "diverged": result.diverged,
              "between": [labels[result.good], labels[result.bad]],
              "steps": [dataclasses.asdict(s) for s in result.steps]}
    if result.culprit is not None:
        c = commits[result.culprit]
        about = ledger.read_source_text(ledger.git(ledger.DEFAULT_REPO, "show", f"{c}:{ledger.SOURCE_FILE}",
                                                    check=False))
        report["culprit"] = {"ledger_commit": c, "label": labels[result.culprit], **about}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "bisect.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    if args.format == "json":
        print(json.dumps(report, indent=1, default=str))
    elif result.culprit is not None:
        cul = report["culprit"]
        print(f"# The first slower commit: {cul.get('commit', cul['label'])}\n")
        print(f"{cul.get('title', '')} ({cul.get('date', '')}); ledger commit {cul['ledger_commit']}, "
              f"after {labels[result.good]}.\n")
        print(f"Cases followed: {', '.join(result.keys)}")
        if result.diverged:
            print(f"Slower elsewhere (another culprit): {', '.join(result.diverged)}")
    else:
        print(f"# No commit named\n\n{result.reason}")
    return 0 if result.culprit is not None else 3


if __name__ == "__main__":
    sys.exit(main())
