#!/usr/bin/env python3
"""The main job: benchmark the newest MLX releases in one interleaved session,
publish the site, and end with the verdicts.

Run by ``python3 tools/quickstart.py main`` (after set-up); by hand:

    python tools/mainjob.py                      # the 2 newest releases, 2 rounds, ops on this machine's backends
    MLX_ASV_MAIN_RELEASES=3 MLX_ASV_MAIN_ROUNDS=4 python tools/mainjob.py

1. Backends: those this machine has (benchmarks/common.py decides, e.g.
   mlx_cpu and torch_cpu on a Linux box without a GPU); the others are named
   once, with the reason, and not started at all (the benchmark ids stay).
2. Measuring: tools/protocol.py's session over the releases, into
   ``results/`` (so the site shows them), rounds alternating in order, each
   process's samples kept in ``.asv/main/<releases>/rounds.json``. An
   interrupted job resumes there: finished rounds are not measured again.
3. ``asv publish`` (with the reference result sets of ``results-reference/``,
   e.g. the H200's CUDA history, copied into ``results/`` first), local
   copies of the site's JavaScript, and the regressions page cut down to the
   steps a same-run verdict confirms (reporting/regressions.py).
4. Confirmation, as tools/gate.py confirms: the cases that the rounds call
   slower or faster between any adjacent pair are measured again, two more
   rounds on every release, while the job's 15 minutes allow; a change
   counts only where the fresh rounds point the same way (the gate's looks,
   each at alpha/3, and its rule: tools/gate.py's ``replay``).
5. The summary: per pair of adjacent releases, how many cases are slower,
   faster, same or undecided, the slower and faster ones listed with their
   intervals and evidence, the unconfirmed ones named, and where the site is.
   The site's regressions page and the report decide the same way
   (reporting/sessions.py).

Settings (environment): MLX_ASV_MAIN_BENCH (an asv -b regex; default
``DEFAULT_BENCH`` on the detected backends), MLX_ASV_MAIN_RELEASES (how many
of the newest releases, default 2), MLX_ASV_MAIN_ROUNDS (default 2; the
confirmation's rounds come on top), MLX_ASV_BACKENDS (the backends, instead of detecting them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import gate
from mlx_asv.decide import instructions
from mlx_asv.measure import protocol
from mlx_asv.envs import ledger

# The families of ops.py whose cases take seconds a call on a 2-core CPU are
# left to `asv run` (tools/gate.py -b for a verdict): with them one release
# takes ~6 minutes a round here, and the main job must end within 15.
# The job ends within this (set-up and asv publish not counted); the
# confirmation measures what fits in it after the rounds.
BUDGET_S = 15 * 60
PUBLISH_RESERVE_S = 90
CONFIRM_ROUNDS = 2
SLOW_FAMILIES = ("MatMul", "Linear", "Conv2d", "ScaledDotProductAttention", "Softmax", "Concat")
DEFAULT_BENCH = r"^ops\.(?!(" + "|".join(SLOW_FAMILIES) + r")\.)[^(]*\(.*'({backends})'\)$"


def log(msg):
    print(f"main job: {msg}", flush=True)


def backends():
    from benchmarks import common

    chosen = os.environ.get(common.SELECTED_ENV, "").strip()
    if chosen:
        return [b.strip() for b in chosen.split(",") if b.strip()], []
    have, left = [], []
    for b in common.BACKENDS:
        reason = common.unavailable_reason(b)
        (left.append((b, reason)) if reason else have.append(b))
    return have, left


def newest_releases(n):
    built = ledger.ensure(log=lambda m: print(m, file=sys.stderr))
    return [(rel.tag, commit) for rel, commit in built[-n:]]


def copy_reference_results(reference=None, results=None):
    """Copy the reference result sets kept in the repository
    (``results-reference/<machine>/``, e.g. the H200's CUDA history) into
    ``results/``, so that asv publish shows them beside this machine's own.
    A file already in results/ is left as it is. Returns the machines copied."""
    import shutil

    reference = reference or os.path.join(ROOT, "results-reference")
    results = results or os.path.join(ROOT, "results")
    copied = []
    for machine in sorted(os.listdir(reference)) if os.path.isdir(reference) else []:
        src = os.path.join(reference, machine)
        if not os.path.isfile(os.path.join(src, "machine.json")):
            continue
        dst = os.path.join(results, machine)
        os.makedirs(dst, exist_ok=True)
        for name in os.listdir(src):
            if name.endswith(".json") and not os.path.exists(os.path.join(dst, name)):
                shutil.copy2(os.path.join(src, name), os.path.join(dst, name))
        copied.append(machine)
    return copied


def pair_verdicts(data, a, b):
    """{case key: Verdict} of one pair of releases, decided as the gate decides
    (tools/gate.py's replay: its looks at alpha/3, and a change counts only
    once fresh rounds confirm it)."""
    return gate.replay(data, a, b)


def unconfirmed(data, releases):
    """The cases some adjacent pair calls slower or faster without fresh rounds
    to confirm it yet."""
    keys = set()
    for (_, a), (_, b) in zip(releases, releases[1:]):
        for k, v in pair_verdicts(data, a, b).items():
            if v.note.startswith("unconfirmed"):
                keys.add(k)
    return sorted(keys)


def affordable(keys, cost, seconds_left, commits):
    """The cheapest of ``keys`` whose confirmation (CONFIRM_ROUNDS rounds on
    every release) fits in ``seconds_left``; ``cost``: seconds a process."""
    chosen, spent = [], 0.0
    for k in sorted(keys, key=lambda k: cost.get(k, 1.0)):
        c = CONFIRM_ROUNDS * commits * cost.get(k, 1.0)
        if spent + c <= seconds_left:
            chosen.append(k)
            spent += c
    return chosen


def confirm(session, releases, rounds, started, log=log):
    """Measure the unconfirmed changes again (CONFIRM_ROUNDS more rounds on
    every release), the cheapest first while the budget lasts. The chosen
    cases are kept in ``confirm.json``, so an interrupted job goes on with
    the same ones. Returns the cases left unconfirmed for want of time."""
    path = os.path.join(session.folder, "confirm.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            chosen, short = json.load(f)
    else:
        flagged = unconfirmed(session.data, releases)
        left = BUDGET_S - PUBLISH_RESERVE_S - (time.time() - started)
        chosen = affordable(flagged, session.cost, left, len(releases))
        short = [k for k in flagged if k not in chosen]
        with open(path, "w", encoding="utf-8") as f:
            json.dump([chosen, short], f)
    if not chosen:
        return short
    log(f"confirming {len(chosen)} change(s) by {CONFIRM_ROUNDS} fresh rounds"
        + (f"; {len(short)} more do not fit the {BUDGET_S // 60}-minute budget" if short else ""))
    while session.rounds < rounds + CONFIRM_ROUNDS:
        session.round(chosen)
    return short


def summary(session, releases):
    """The verdicts between adjacent releases, as lines of text."""
    lines = []
    for (tag_a, a), (tag_b, b) in zip(releases, releases[1:]):
        verdicts = list(pair_verdicts(session.data, a, b).values())
        if not verdicts:
            lines.append(f"{tag_a} -> {tag_b}: no case measured on both")
            continue
        counts = vd.summary(verdicts)
        procs = sorted({v.n_base for v in verdicts})
        lines.append(f"{tag_a} -> {tag_b}: {counts['slower']} slower, {counts['faster']} faster, "
                     f"{counts['same']} same, {counts['undecided']} undecided of {len(verdicts)} cases "
                     f"(same run, {'/'.join(map(str, procs))} interleaved processes a side, moderated t-test, "
                     f"99.9% intervals, a change counted once fresh rounds confirm it, as tools/gate.py does)")
        for v in sorted(verdicts, key=lambda v: -v.ratio):
            if v.verdict in (vd.SLOWER, vd.FASTER):
                lines.append(f"  {v.verdict:7s} {v.ratio:.2f}x [{v.lo:.2f}-{v.hi:.2f}]  {v.key}")
        undecided = [v for v in verdicts if v.verdict == vd.UNDECIDED]
        for v in sorted(undecided, key=lambda v: -v.ratio):
            if v.note.startswith("unconfirmed"):
                lines.append(f"  undecided ({v.note}: the fresh rounds did not show it, or did not fit) "
                             f"{v.ratio:.2f}x [{v.lo:.2f}-{v.hi:.2f}]  {v.key}")
        counted = instructions.hint(tag_a, tag_b, [(v.key, v.verdict, v.ratio) for v in verdicts])
        if counted:
            lines.append(counted)
        if undecided:
            needed = sorted(v.rounds_needed for v in undecided if v.rounds_needed)
            lines.append(f"  undecided: {len(undecided)}; {len(needed)} of them would be decided by "
                         f"{needed[len(needed) // 2] if needed else '?'} rounds a side (median; "
                         f"MLX_ASV_MAIN_ROUNDS, or tools/gate.py {tag_a} {tag_b}), the others need more "
                         f"than this machine's noise allows")
    return lines


def main():
    started = time.time()
    have, left = backends()
    if left:
        log("backends left out: " + "; ".join(f"{b} ({why})" for b, why in left))
    bench = os.environ.get("MLX_ASV_MAIN_BENCH") or DEFAULT_BENCH.format(backends="|".join(have))
    n = int(os.environ.get("MLX_ASV_MAIN_RELEASES", "2"))
    rounds = int(os.environ.get("MLX_ASV_MAIN_ROUNDS", "2"))
    releases = newest_releases(n)
    tags = [t for t, _ in releases]
    folder = os.path.join(ROOT, ".asv", "main", "-".join(tags) + f"-{zlib.crc32(bench.encode()):08x}")
    session = protocol.Session(folder, [c for _, c in releases], bench, project_results=True,
                               log=lambda m: log(m))
    if session.rounds:
        log(f"resuming {os.path.relpath(folder, ROOT)}: {session.rounds} of {rounds} rounds done")
    log(f"{', '.join(tags)}: {rounds} interleaved rounds of {bench}")
    failed = False
    while session.rounds < rounds:
        try:
            took = session.round()
        except protocol.ProtocolError as e:
            log(str(e))
            failed = True
            break
        log(f"round {session.rounds} of {rounds} took {took / 60:.1f} min")
    if not failed and session.rounds >= rounds:
        try:
            confirm(session, releases, rounds, started)
        except protocol.ProtocolError as e:
            log(str(e))
            failed = True
    copied = copy_reference_results()
    if copied:
        log(f"reference results published beside this machine's: {', '.join(copied)} (results-reference/)")
    asv = protocol.asv_executable()
    if subprocess.run([asv, "publish"], cwd=ROOT).returncode != 0:
        sys.exit("main job: asv publish failed")
    subprocess.run([sys.executable, "reporting/site_assets.py"], cwd=ROOT)
    subprocess.run([sys.executable, "-m", "reporting.regressions"], cwd=ROOT)
    print()
    print("What changed between the releases measured:")
    for line in summary(session, releases):
        print("  " + line)
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"releases": tags, "bench": bench, "rounds": session.rounds}, f)
    print()
    log(f"done in {(time.time() - started) / 60:.1f} min; open html/index.html "
        f"(or: {os.path.relpath(asv, ROOT)} preview); the report: python reporting/report.py")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
