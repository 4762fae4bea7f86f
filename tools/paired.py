#!/usr/bin/env python3
r"""What a paired protocol would buy: A/A pairs of long-lived workers, a case's
two sides measured back to back, over the whole of ops.py on this machine.

    python tools/paired.py --pairs 3 --turns 3                 # every ops case on mlx_cpu and torch_cpu
    python tools/paired.py --pairs 3 --turns 3 -b '^ops\.(Sum|ReLU)\.'
    python tools/paired.py --summary .asv/paired/<run>         # decide a recorded run again
    python tools/paired.py --faults -b '^ops\.(ReLU|LayerNorm)\.'  # one process, the workers' order: page faults a call

The gate (tools/gate.py) measures every case in a fresh process per side per
round; the two sides of a case run minutes apart, and two processes of one
build then differ by about 4% here, most of it the moment each ran
(``tools/procspread.py --rebuilds``). Two workers asked in turn, a case's
sides within a second of each other, differed by a median 1.5%
(``procspread.py --pairs``, 10 cases). This tool measures that design over
every case, as a calibration would:

- A *pair* is two worker processes of the same build (the MLX installed in
  this environment: an A/A comparison). Each takes the cases one after the
  other, builds the case (the callable asv times, ``CaseTable.callable``),
  and the parent asks both sides in turn, ``--turns`` times a case, the side
  that goes first alternating; each answer is the fastest call of a few
  samples (``measure``). Pairs run one after the other.
- A pair's observation of a case is the mean over its turns of
  log(B / A). The test (``reporting/verdicts.py``, ``decide_paired``) is a
  one-sample moderated t-test of those observations over the pairs (the
  variance between pairs, shrunk toward a prior fitted on the cases of the
  same backend and time decade), with the gate's alpha/3 per look and its
  thresholds: slower, faster, same or undecided. The turns of one pair are
  not replicates: pairs differ by more than their turns do.
- Injected slowdowns are exact, as ``gpu/gpu_verdicts.py`` injects them: the
  suite's injection (benchmarks/common.py, ``stretched``) makes every timed
  call of an injected case exactly ``factor`` times longer, so the tool adds
  log(factor) to the observations of a seeded random third of the cases.

It prints the A/A false alarms, each case's minimum detectable effect at
80% power, the injected slowdowns found (cases whose call takes a millisecond or more, and all),
and what a pair cost. Output: ``.asv/paired/<run>/pairs.json`` (raw
answers) and ``summary.md``. Not the gate: nothing here installs two
releases; it says what a gate built this way would find here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from reporting import verdicts as vd  # noqa: E402
from tools import protocol  # noqa: E402
from tools.procspread import fastest_call  # noqa: E402

KEY_RX = re.compile(r"^ops\.(\w+)\.time_op\('(.*)', '(\w+)'\)$")
DEFAULT_BENCH = r"^ops\.[^(]*\(.*'(mlx_cpu|torch_cpu)'\)$"
# Cases whose process costs more than this (seconds, .asv/costs.json) are
# left out by default: MLX's CPU matmuls take 20-80 s a process here.
DEFAULT_MAX_COST = 8.0
SAMPLES = 5
SAMPLE_SECONDS = 0.02
MEASURE_SECONDS = 0.3
LOOKS = 3  # the gate's alpha is split over its looks; this is one of them
FACTORS = (1.05, 1.10, 1.20)


def measure(fn, samples=SAMPLES, sample_seconds=SAMPLE_SECONDS, budget=MEASURE_SECONDS, clock=time.perf_counter):
    """Seconds a call in the fastest of at most ``samples`` samples of about
    ``sample_seconds`` each, within about ``budget`` seconds (at least one
    sample), after one untimed call: procspread's rule, with a budget."""
    return fastest_call(fn, samples=samples, sample_seconds=sample_seconds, clock=clock, budget=budget)


def worker():
    """Answer each JSON line [family, label, backend] on stdin with the
    measured seconds of that case (built once, kept while asked), or a skip
    or an error, until stdin closes."""
    from benchmarks import ops

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        family, label, backend = json.loads(line)
        try:
            fn = getattr(ops, family).callable(label, backend)
            print(json.dumps({"seconds": measure(fn)}), flush=True)
        except NotImplementedError as e:
            print(json.dumps({"skip": str(e) or "not implemented in this release"}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported to the parent as this case's failure
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


def faults(cases, show=None, out=print):
    """In this process, the cases in the workers' order: for each, the minor
    page faults of one call and the fastest call (``measure``). A case whose
    output comes from fresh pages faults on every call; from reused heap,
    not at all: which of the two depends on what the process freed before
    (glibc's adjusting malloc thresholds; GLIBC_TUNABLES can fix them).
    Every case runs; only those in ``show`` (default: all) are printed."""
    import resource

    from benchmarks import ops

    for key, family, label, backend in cases:
        try:
            fn = getattr(ops, family).callable(label, backend)
        except NotImplementedError:
            continue
        fn()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn()
        faulted = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        if show is None or key in show:
            out(f"{faulted:7d} faults a call  {1e3 * measure(fn):9.3f} ms  {key}")


def cases_of(bench, costs, max_cost):
    """(cases [(key, family, label, backend)], left out {key: cost}) of the
    ops.py cases matching ``bench`` among those the cost cache knows."""
    rx = re.compile(bench)
    chosen, left = [], {}
    for key in sorted(costs):
        m = KEY_RX.match(key)
        if not m or not rx.search(key):
            continue
        if costs[key] > max_cost:
            left[key] = costs[key]
            continue
        chosen.append((key,) + m.groups())
    return chosen, left


def run_pair(cases, turns, launch, log=lambda m: None):
    """{key: {"a": [...], "b": [...]}} or {key: {"failed": why}} for one pair of workers."""
    workers = [launch(), launch()]
    out = {}
    try:
        for w in workers:
            line = w.stdout.readline()
            if not line.strip() or not json.loads(line).get("ready"):
                raise RuntimeError(f"a worker did not start: {line.strip() or 'no output'}")
        for i, (key, family, label, backend) in enumerate(cases):
            got = {"a": [], "b": []}
            for t in range(turns):
                for side in ((0, 1) if (t + i) % 2 == 0 else (1, 0)):
                    w = workers[side]
                    w.stdin.write(json.dumps([family, label, backend]) + "\n")
                    w.stdin.flush()
                    line = w.stdout.readline()
                    if not line.strip():
                        raise RuntimeError(f"a worker stopped at {key} (exit {w.poll()})")
                    answer = json.loads(line)
                    if "seconds" not in answer:
                        got = {"failed": answer.get("error") or answer.get("skip")}
                        break
                    got["ab"[side]].append(answer["seconds"])
                if "failed" in got:
                    break
            out[key] = got
            if (i + 1) % 25 == 0:
                log(f"  {i + 1} of {len(cases)} cases")
        return out
    finally:
        for w in workers:
            w.stdin.close()
            w.wait()


def observations(pairs):
    """{key: [mean over a pair's turns of log(b / a), one per pair]} of the
    cases every pair measured."""
    out = {}
    for key in pairs[0]:
        per = [p.get(key, {}) for p in pairs]
        if all(q.get("a") and len(q["a"]) == len(q["b"]) for q in per):
            out[key] = [statistics.fmean(math.log(b / a) for a, b in zip(q["a"], q["b"])) for q in per]
    return out


def base_time(pairs, key):
    return math.exp(statistics.fmean(math.log(x) for p in pairs for x in p[key]["a"]))


def evaluate(pairs, seeds=(1, 2, 3, 4, 5), alpha=vd.ALPHA / LOOKS):
    """The calibration's figures from recorded pairs (see the module docstring)."""
    obs = observations(pairs)
    keys = sorted(obs)
    groups = {k: vd.prior_group(KEY_RX.match(k).group(3), [[base_time(pairs, k)]]) for k in keys}
    aa = vd.decide_paired({k: (obs[k], groups[k]) for k in keys}, alpha=alpha)
    prior = vd.paired_priors({k: (obs[k], groups[k]) for k in keys})
    long = {k for k in keys if base_time(pairs, k) >= 1e-3}
    found = {f: {"long": [0, 0], "all": [0, 0], "faster": 0} for f in FACTORS}
    for seed in seeds:
        rng = random.Random(seed)
        for f in FACTORS:
            chosen = set(rng.sample(keys, len(keys) // 3))
            shifted = {k: ([d + math.log(f) for d in obs[k]] if k in chosen else obs[k], groups[k]) for k in keys}
            # The prior is the A/A run's: an injection shifts means, not variances.
            verdicts = vd.decide_paired(shifted, alpha=alpha, prior=prior)
            for k in chosen:
                hit = verdicts[k].verdict == vd.SLOWER
                for scope in (("long", "all") if k in long else ("all",)):
                    found[f][scope][0] += hit
                    found[f][scope][1] += 1
                found[f]["faster"] += verdicts[k].verdict == vd.FASTER
    mde = {k: aa[k].minimum_detectable_effect(alpha=alpha) for k in keys}
    return {"verdicts": aa, "mde": mde, "found": found, "long": long, "n_pairs": len(pairs)}


def summary_text(ev, seconds_a_pair=None, left_out=None):
    verdicts, mde, long = ev["verdicts"], ev["mde"], ev["long"]
    alarms = [v for v in verdicts.values() if v.verdict in (vd.SLOWER, vd.FASTER)]
    counts = vd.summary(verdicts.values())
    finite = sorted(m for k, m in mde.items() if not math.isnan(m))
    finite_long = sorted(m for k, m in mde.items() if k in long and not math.isnan(m))

    def pct(xs, q):
        if not xs:
            return "n/a"
        x = xs[min(len(xs) - 1, int(q * len(xs)))]
        return f"{100 * x:.1f}%" if x < 10 else "over 1000%"

    lines = [f"A/A, {ev['n_pairs']} pairs of workers, {len(verdicts)} cases: {len(alarms)} false alarms "
             f"({counts['same']} same, {counts['undecided']} undecided)"]
    for v in alarms:
        lines.append(f"  {v.verdict} {v.ratio:.3f}x [{v.lo:.3f}-{v.hi:.3f}] {v.key}")
    lines.append(f"minimum detectable effect at 80% power: median {pct(finite, 0.5)}, 90th percentile "
                 f"{pct(finite, 0.9)} ({len(finite)} cases); cases of 1 ms or more: median "
                 f"{pct(finite_long, 0.5)}, 90th percentile {pct(finite_long, 0.9)} ({len(finite_long)})")
    for f, r in ev["found"].items():
        (hl, nl), (ha, na) = r["long"], r["all"]
        lines.append(f"injected +{100 * (f - 1):.0f}%: called slower {hl} of {nl} "
                     f"({100 * hl / max(nl, 1):.0f}%) in cases of 1 ms or more, {ha} of {na} "
                     f"({100 * ha / max(na, 1):.0f}%) in all; called faster: {r['faster']}")
    if seconds_a_pair:
        lines.append(f"a pair took {seconds_a_pair / 60:.1f} min (median)")
    if left_out:
        lines.append(f"left out (a process costs more than the limit): {len(left_out)} cases")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=3, help="pairs of workers, one after the other (default 3)")
    ap.add_argument("--turns", type=int, default=3, help="turns a case in a pair (default 3)")
    ap.add_argument("-b", "--bench", default=DEFAULT_BENCH, help="asv -b regex over ops.py's case keys")
    ap.add_argument("--max-cost", type=float, default=DEFAULT_MAX_COST,
                    help=f"leave out cases whose process costs more seconds (default {DEFAULT_MAX_COST})")
    ap.add_argument("--summary", metavar="DIR", help="decide a recorded run again")
    ap.add_argument("--faults", action="store_true",
                    help="instead: in this one process, each case's page faults a call, in the workers' order")
    ap.add_argument("--alone", action="store_true",
                    help="with --faults: run only the matching cases, not the workers' whole order before them")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if args.summary:
        try:
            with open(os.path.join(args.summary, "pairs.json"), encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError) as e:
            print(f"paired: cannot read {args.summary}/pairs.json ({e}); give a folder a run wrote", file=sys.stderr)
            return 2
        print(summary_text(evaluate(saved["pairs"]), saved.get("seconds_a_pair"), saved.get("left_out")))
        return 0
    if args.pairs < 2 or args.turns < 1:
        print("paired: --pairs must be at least 2 (the test's variance is between pairs) and --turns at least 1",
              file=sys.stderr)
        return 2
    try:
        re.compile(args.bench)
    except re.error as e:
        print(f"paired: bad -b regex ({e})", file=sys.stderr)
        return 2
    cases, left = cases_of(args.bench, protocol.load_costs(), args.max_cost)
    if not cases:
        print(f"paired: no ops.py case matches {args.bench!r} in {protocol.COSTS} (a gate or the main job "
              f"records the costs; run one first)", file=sys.stderr)
        return 2
    if args.faults:
        # The workers' whole order runs, so each case has the history it had
        # in a worker; only the cases matching -b are printed.
        every, _ = cases_of(DEFAULT_BENCH, protocol.load_costs(), args.max_cost)
        chosen = {c[0] for c in cases}
        faults(cases if args.alone else every, show=chosen, out=lambda line: print(line, flush=True))
        return 0
    folder = os.path.join(ROOT, ".asv", "paired", time.strftime("paired-%Y%m%d-%H%M%S"))
    os.makedirs(folder, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)

    def launch():
        return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    pairs, took = [], []
    print(f"paired: {len(cases)} cases, {args.pairs} pairs x {args.turns} turns; {len(left)} left out; "
          f"into {os.path.relpath(folder, ROOT)}", flush=True)
    for i in range(args.pairs):
        started = time.time()
        try:
            pairs.append(run_pair(cases, args.turns, launch, log=lambda m: print(m, flush=True)))
        except RuntimeError as e:
            print(f"paired: pair {i + 1}: {e}", file=sys.stderr)
            return 1
        took.append(time.time() - started)
        print(f"paired: pair {i + 1} of {args.pairs} took {took[-1] / 60:.1f} min", flush=True)
        with open(os.path.join(folder, "pairs.json"), "w", encoding="utf-8") as f:
            json.dump({"pairs": pairs, "seconds_a_pair": statistics.median(took), "left_out": left,
                       "turns": args.turns, "bench": args.bench}, f)
    failed = sorted(k for p in pairs for k, v in p.items() if "failed" in v)
    text = summary_text(evaluate(pairs), statistics.median(took), left)
    if failed:
        text += f"\nfailed or skipped in some pair: {len(set(failed))} cases"
    with open(os.path.join(folder, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
