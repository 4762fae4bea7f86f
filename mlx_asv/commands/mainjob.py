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
3. Work: every ``mlx_cpu`` case's instructions a call on each release,
   counted under valgrind side by side (the count store first), recorded by
   asv (``work.*.track_instructions``) and decided (``count_work``).
4. Confirmation, as tools/gate.py confirms: the cases that the rounds call
   slower or faster between any adjacent pair are measured again, two more
   rounds on every release, while what is left of the job's 15 minutes
   allows; a change counts only where the fresh rounds point the same way
   (the gate's looks, each at alpha/3, and its rule: tools/gate.py's ``replay``).
5. ``asv publish`` (with the reference result sets of ``results-reference/``,
   e.g. the H200's CUDA history and the history in counts, copied into
   ``results/`` first), local copies of the site's JavaScript, and the
   regressions page cut down to the steps a same-run verdict or the counts
   confirm (mlx_asv/report/regressions.py).
6. The summary: per pair of adjacent releases, how many cases are slower,
   faster, same or undecided, the slower and faster ones listed with their
   intervals and evidence, the unconfirmed ones named, and where the site is.
   The site's regressions page and the report decide the same way
   (mlx_asv/report/sessions.py).

Settings (environment): MLX_ASV_MAIN_BENCH (an asv -b regex; default
``default_bench`` of the detected backends), MLX_ASV_MAIN_RELEASES (how many
of the newest releases, default 2), MLX_ASV_MAIN_ROUNDS (default 2; the
confirmation's rounds come on top), MLX_ASV_BACKENDS (the backends, instead of detecting them).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import zlib

from benchmarks.lib import counting
from mlx_asv import cli
from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import gate
from mlx_asv.decide import instructions
from mlx_asv.report import count_history
from mlx_asv.measure import protocol
from mlx_asv.envs import ledger

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The families of ops.py whose cases take seconds a call on a 2-core CPU are
# left to `asv run` (tools/gate.py -b for a verdict): with them one release
# takes ~6 minutes a round here, and the main job must end within 15.
# The job ends within this, counted from $MLX_ASV_STARTED where the caller
# set it (tools/quickstart.py does, so its set-up counts too: a fresh clone's
# whole command must end within 15 minutes), else from the job's start; the
# confirmation measures what fits in it after the rounds.
BUDGET_S = 15 * 60
STARTED_ENV = "MLX_ASV_STARTED"
PUBLISH_RESERVE_S = 90
CONFIRM_ROUNDS = 2
WORK_CALLS = 1
# After asv publish: the site's JavaScript copies and its regressions page, each a subcommand run as
# ``python -m mlx_asv.commands`` from the root (the package's own path, not reporting/'s old-path shims)
SITE_SUBCOMMANDS = ("site-assets", "regressions")
SLOW_FAMILIES = ("MatMul", "Linear", "Conv2d", "ScaledDotProductAttention", "Softmax", "Concat")


def default_bench(backends):
    """The main job's asv -b regex: ops.py without the slow families, on these backends."""
    return protocol.bench_regex(backends, names=r"^ops\.(?!(" + "|".join(SLOW_FAMILIES) + r")\.)[^(]*")


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
            wanted = name.endswith(".json") or name == count_history.STEPS_FILE
            if wanted and not os.path.exists(os.path.join(dst, name)):
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


# A counting process of the main job's work verdicts may take this long;
# a case past it is failed and the cases after it go on in a new process.
WORK_TIMEOUT_S = 20 * 60
# Changed cases listed a pair, at most (the rest are in verdicts.json).
LISTED = 30

def count_work(releases, bench, folder, log=log):
    """The work of the selection's ``mlx_cpu`` cases on every release: their
    instructions a call, counted under valgrind for all releases side by side
    (tools/instructions.py's count_run, through the count store), then
    recorded by asv from the store (``work.*.track_instructions``, unit
    "instructions", into results/), and checked to be the same numbers.
    -> (count_run's report, "") or (None, why there are no work verdicts)."""
    if not sys.platform.startswith("linux"):
        return None, f"not counted: valgrind counts on Linux only, not on {sys.platform}"
    todo = instructions.cases(bench)
    if not todo:
        return None, "not counted: the selection has no mlx_cpu case of ops.py"
    try:
        instructions.check_tools()
        report = instructions.count_run([t for t, _ in releases], [c for _, c in releases], todo,
                                        os.path.join(folder, "work"), calls=WORK_CALLS, timeout_s=WORK_TIMEOUT_S,
                                        use_store=True, log=lambda m: log(f"work: {m}"))
    except instructions.InstructionsError as e:
        return None, f"failed: {e}"
    log(f"work: {len(todo)} mlx_cpu case(s) counted on {len(report['names'])} releases in "
        f"{report['seconds'] / 60:.1f} min")
    failed = {r["key"] for p in report["pairs"] for r in p["cases"] if r["verdict"] in ("failed", "skipped")}
    keys = [counting.work_key(c[0]) for c in todo if c[0] not in failed]
    if keys:
        recorded = protocol.Session(os.path.join(folder, "work-asv"), report["commits"], protocol.case_regex(keys),
                                    project_results=True, log=lambda m: log(f"work: {m}"))
        if not recorded.rounds:
            recorded.round()
        report["asv_mismatch"] = asv_mismatches(report, recorded.data)
        for line in report["asv_mismatch"]:
            log(f"work: asv recorded another count than the counting: {line}")
    return report, ""


def asv_mismatches(report, recorded):
    """The cases whose count asv recorded (``recorded``: a Session's data of
    the work benchmarks) differs from the one counted, as lines."""
    out = []
    named = dict(zip(report["names"], report["commits"]))
    for pair in report["pairs"]:
        for row in pair["cases"]:
            if row["verdict"] in ("failed", "skipped"):
                continue
            for side, count in ((pair["base"], row["base"]), (pair["cand"], row["cand"])):
                got = recorded.get(counting.work_key(row["key"]), {}).get(named[side])
                value = got[-1][0] if got and got[-1] else None
                if value != count:
                    out.append(f"{row['key']} on {side}: counted {count}, asv has {value}")
    return out


def _pct(x):
    # an interval of a case measured too little to bound: say so, not +9e14%
    return f"{100 * x:+.0f}%" if abs(x) <= 10 else "+1000% and more"


def pair_cases(data, a, b, work_pair):
    """Per case of one release pair: its time verdict (the gate's rule) and,
    for mlx_cpu, its work verdict (``work_pair``: count_run's pair) -> rows."""
    times = pair_verdicts(data, a, b)
    works = {r["key"]: r for r in (work_pair or {}).get("cases", [])}
    rows = []
    for key in sorted(set(times) | set(works)):
        row = {"key": key, "backend": protocol.group_of(key), "time": None, "work": None}
        v = times.get(key)
        if v is not None:
            mde = v.minimum_detectable_effect()
            row["time"] = {"verdict": v.verdict, "ratio": v.ratio, "lo": v.lo, "hi": v.hi,
                           "processes": [v.n_base, v.n_cand], "mde": mde if math.isfinite(mde) else None,
                           "note": v.note}
        w = works.get(key)
        if w is not None:
            row["work"] = {"verdict": vd.work_word(w["verdict"]), "ratio": w["ratio"],
                           "base": w["base"], "cand": w["cand"], "note": w["note"],
                           "threshold": vd.work_threshold(w["base"], key) if w["base"] else None,
                           "functions": w["functions"]}
        rows.append(row)
    return rows


def _tally(verdicts, order):
    counts = {k: 0 for k in order}
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in order[:4])


def _median(xs):
    xs = sorted(x for x in xs if x is not None and math.isfinite(x))
    return xs[len(xs) // 2] if xs else math.nan


def pair_summary(tag_a, tag_b, rows, work_why=""):
    """The summary lines of one release pair (``pair_cases`` rows)."""
    mlx = [r for r in rows if r["backend"] == "mlx_cpu"]
    torch = [r for r in rows if r["backend"] == "torch_cpu" and r["time"]]
    other = [r for r in rows if r["backend"] not in ("mlx_cpu", "torch_cpu") and r["time"]]
    lines = [f"{tag_a} -> {tag_b}: {len(mlx)} mlx_cpu cases" + (f", {len(torch)} torch_cpu" if torch else "")
             + (f", {len(other)} on other backends" if other else "")]
    worked = [r for r in mlx if r["work"]]
    if worked:
        lines.append(f"  work, mlx_cpu (instructions of one call under valgrind's callgrind, a process a side; "
                     f"same within {100 * vd.WORK_SAME_WITHIN:g}% at {vd.WORK_LARGE // 10**6} M instructions or "
                     f"more, {100 * vd.WORK_SAME_WITHIN_SMALL:g}% below: the A/A spread): "
                     + _tally([r["work"]["verdict"] for r in worked], ("more", "fewer", "same", "undecided")))
    elif mlx:
        lines.append(f"  work, mlx_cpu: {work_why or 'not counted'}")
    timed = [r for r in mlx + other if r["time"]]
    if timed:
        procs = sorted({p for r in timed for p in r["time"]["processes"]})
        und = [r["time"] for r in timed if r["time"]["verdict"] == vd.UNDECIDED]
        rule_out = (f"; the undecided rule out changes beyond {_pct(_median([t['lo'] - 1 for t in und]))}"
                    f"/{_pct(_median([t['hi'] - 1 for t in und]))} (median 99.9% interval), MDE median "
                    f"{100 * _median([t['mde'] for t in und]):.0f}%" if und else "")
        lines.append(f"  time, {'mlx_cpu' if not other else 'MLX'} ({'/'.join(map(str, procs))} interleaved "
                     f"processes a side, moderated t-test, a change counted once fresh rounds confirm it, "
                     f"as tools/gate.py): "
                     + _tally([r["time"]["verdict"] for r in timed], (vd.SLOWER, vd.FASTER, vd.SAME, vd.UNDECIDED))
                     + rule_out)
    if torch:
        flagged = [r for r in torch if r["time"]["verdict"] in (vd.SLOWER, vd.FASTER)]
        lines.append(f"  torch_cpu control (pinned torch, the same on both sides: an A/A of the time verdicts): "
                     f"{len(flagged)} of {len(torch)} flagged slower or faster ("
                     + _tally([r["time"]["verdict"] for r in torch], (vd.SAME, vd.UNDECIDED)) + ")")
    changed = [r for r in rows if (r["work"] and r["work"]["verdict"] in ("more", "fewer", "failed"))
               or (r["time"] and r["time"]["verdict"] in (vd.SLOWER, vd.FASTER))]
    changed.sort(key=lambda r: -max(abs(math.log(r[m]["ratio"])) if r[m] and r[m]["ratio"] == r[m]["ratio"]
                                    and r[m]["ratio"] > 0 else 0.0 for m in ("work", "time")))
    if changed:
        lines.append("  changed (work or time):")
    for r in changed[:LISTED]:
        parts = []
        w, t = r["work"], r["time"]
        if w:
            parts.append(f"work {w['verdict']} {w['ratio']:.3f}x" if w["verdict"] != "failed"
                         else f"work failed ({w['note']})")
        if t:
            parts.append(f"time {t['verdict']} {t['ratio']:.2f}x [{t['lo']:.2f}-{t['hi']:.2f}]")
        fn = ""
        if w and w.get("functions"):
            name, before, after = w["functions"][0]
            fn = (f"  {instructions.short_name(name, 70)} {instructions.fmt_count(before)} -> "
                  f"{instructions.fmt_count(after)}")
        lines.append(f"    {', '.join(parts)}  {r['key']}{' (torch control)' if r['backend'] == 'torch_cpu' else ''}"
                     + fn)
    if len(changed) > LISTED:
        lines.append(f"    and {len(changed) - LISTED} more (verdicts.json)")
    pending = [r for r in rows if r["time"] and r["time"]["note"].startswith("unconfirmed")]
    if pending:
        lines.append(f"  time changes not confirmed by fresh rounds (undecided): {len(pending)} (verdicts.json)")
    return lines


def summary(session, releases, work=None, work_why=""):
    """(the verdicts between adjacent releases as lines of text, their rows
    for verdicts.json). ``work``: count_run's report, or None (``work_why``)."""
    lines, pairs = [], []
    works = {(p["base"], p["cand"]): p for p in (work or {}).get("pairs", [])}
    for (tag_a, a), (tag_b, b) in zip(releases, releases[1:]):
        rows = pair_cases(session.data, a, b, works.get((tag_a, tag_b)))
        if not rows:
            lines.append(f"{tag_a} -> {tag_b}: no case measured on both")
            continue
        lines += pair_summary(tag_a, tag_b, rows, work_why)
        pairs.append({"base": tag_a, "cand": tag_b, "cases": rows})
    return lines, pairs


def started_at(env=os.environ, now=time.time):
    """When the budget's clock started: $MLX_ASV_STARTED (seconds since the
    epoch, set by tools/quickstart.py before its set-up), or now. A value that
    is no time, or lies in the future, is ignored with one line."""
    raw = env.get(STARTED_ENV, "")
    t = now()
    if not raw:
        return t
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or value > t or t - value > BUDGET_S:
        log(f"ignoring {STARTED_ENV}={raw!r} (not a time of the last {BUDGET_S // 60} minutes, in "
            "seconds since the epoch); the budget counts from now")
        return t
    return value


def main(argv=None):
    # No arguments: the settings are the environment's (the docstring's last
    # paragraph, shown as --help's epilog); the parser gives --help and one
    # clear error for anything else, before anything runs.
    ap = cli.parser(__doc__)
    ap.epilog = __doc__[__doc__.index("Settings (environment)"):].strip()
    ap.parse_args(argv)
    started = started_at()
    have, left = backends()
    if left:
        log("backends left out: " + "; ".join(f"{b} ({why})" for b, why in left))
    bench = os.environ.get("MLX_ASV_MAIN_BENCH") or default_bench(have)
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
    # The work verdicts before the confirmation rounds: they decide the mlx_cpu
    # cases, and the confirmation then takes what is left of the budget.
    work, work_why = (None, "not counted: the time rounds did not finish")
    if not failed and session.rounds >= rounds:
        work, work_why = count_work(releases, bench, folder)
        if work is None and not work_why.startswith("not counted"):
            log(f"work verdicts {work_why}")
            failed = True
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
    for name in SITE_SUBCOMMANDS:
        subprocess.run([sys.executable, "-m", "mlx_asv.commands", name], cwd=ROOT)
    print()
    print("What changed between the releases measured:")
    lines, pairs = summary(session, releases, work, work_why)
    for line in lines:
        print("  " + line)
    verdicts_path = os.path.join(folder, "verdicts.json")
    with open(verdicts_path, "w") as f:
        json.dump({"releases": tags, "bench": bench, "rounds": session.rounds, "pairs": pairs,
                   "work": {"calls": WORK_CALLS, "why_not": work_why,
                            "asv_mismatch": (work or {}).get("asv_mismatch", [])}}, f, indent=1)
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump({"releases": tags, "bench": bench, "rounds": session.rounds}, f)
    print(f"  per-case verdicts, work and time with their figures: {os.path.relpath(verdicts_path, ROOT)}")
    print()
    log(f"done in {(time.time() - started) / 60:.1f} min; open html/index.html "
        f"(or: {os.path.relpath(asv, ROOT)} preview); the report: python reporting/report.py")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
