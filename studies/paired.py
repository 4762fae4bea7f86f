#!/usr/bin/env python3
r"""What a paired protocol would buy: A/A pairs (of long-lived workers, or of
fresh processes) with a case's two sides measured back to back, over the
whole of ops.py on this machine.

    python studies/paired.py --pairs 3 --turns 3                 # every ops case on mlx_cpu and torch_cpu
    python studies/paired.py --pairs 3 --turns 3 -b '^ops\.(Sum|ReLU)\.'
    python studies/paired.py --summary .asv/paired/<run>         # decide a recorded run again
    python studies/paired.py --faults -b '^ops\.(ReLU|LayerNorm)\.'  # one process, the workers' order: page faults a call
    python studies/paired.py --fresh --pairs 9                   # pairs of fresh processes, asv's forkserver
    python studies/paired.py --summary .asv/paired/<run> --gates 3   # ... decided as three gates of 3 pairs
    python studies/paired.py --summary .asv/paired/<run> --gates 1 --first 3   # the first 3 passes as one gate

The gate (tools/gate.py) measures every case in a fresh process per side per
round; the two sides of a case run minutes apart, and two processes of one
build then differ by about 4% here, most of it the moment each ran
(``studies/procspread.py --rebuilds``). Two workers asked in turn, a case's
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
  log(B / A). The test (``mlx_asv/decide/verdicts.py``, ``decide_paired``) is a
  one-sample moderated t-test of those observations over the pairs (the
  variance between pairs, shrunk toward a prior fitted on the cases of the
  same backend and time decade), with the gate's alpha/3 per look and its
  thresholds: slower, faster, same or undecided. The turns of one pair are
  not replicates: pairs differ by more than their turns do.
- Injected slowdowns are exact, as ``studies/gpu_verdicts.py`` injects them: the
  suite's injection (benchmarks/common.py, ``stretched``) makes every timed
  call of an injected case exactly ``factor`` times longer, so the tool adds
  log(factor) to the observations of a seeded random third of the cases.

``--fresh``: a pair is instead two *fresh processes* a case, back to back
(the side that goes first alternating), each forked by an asv forkserver of
its own side (new servers every pass, as asv starts them every run), and
measuring the case as a gate's process does: asv's runner
(``asv.runner``'s single-parameter run, the benchmark's own set-up and
timer) with the protocol's ``repeat`` (``mlx_asv/measure/protocol.py``); its answer is
the fastest sample. A pass over the cases is one pair of each. This is the
gate's unit (a fresh process a case a side) with the two sides of a case
seconds apart instead of minutes, and no worker history (the malloc modes
above). ``--gates N`` (with ``--summary``) splits the passes into N
consecutive groups and decides each group as one gate would, and also
decides the same processes unpaired (``verdicts.decide``, the gate's
two-sample test), so the pairing's gain is measured on identical data.

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

from mlx_asv.decide import verdicts as vd
from mlx_asv.measure import protocol
from studies.procspread import fastest_call
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KEY_RX = re.compile(r"^ops\.(\w+)\.time_op\('(.*)', '(\w+)'\)$")
DEFAULT_BENCH = protocol.bench_regex(("mlx_cpu", "torch_cpu"))
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


def both_sides(cases, turns, ask, first=0, log=lambda m: None):
    """Each case's two sides asked in turn, ``turns`` times, the side that goes
    first alternating with the case and the turn (``first`` shifts it: a
    pass's index): {key: {"a": [...], "b": [...]}}, or {key: {"failed": why}}
    at a side's first answer without "seconds". ``ask(side, case)`` -> an
    answer: {"seconds": s}, or {"failed"|"error"|"skip": why}."""
    out = {}
    for i, case in enumerate(cases):
        got = {"a": [], "b": []}
        for t in range(turns):
            for side in ((0, 1) if (first + t + i) % 2 == 0 else (1, 0)):
                answer = ask(side, case)
                if "seconds" not in answer:
                    got = {"failed": answer.get("failed") or answer.get("error") or answer.get("skip")}
                    break
                got["ab"[side]].append(answer["seconds"])
            if "failed" in got:
                break
        out[case[0]] = got
        if (i + 1) % 25 == 0:
            log(f"  {i + 1} of {len(cases)} cases")
    return out


def run_pair(cases, turns, launch, log=lambda m: None):
    """{key: {"a": [...], "b": [...]}} or {key: {"failed": why}} for one pair of workers."""
    workers = [launch(), launch()]

    def ask(side, case):
        key, family, label, backend = case
        w = workers[side]
        w.stdin.write(json.dumps([family, label, backend]) + "\n")
        w.stdin.flush()
        line = w.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"a worker stopped at {key} (exit {w.poll()})")
        return json.loads(line)

    try:
        for w in workers:
            line = w.stdout.readline()
            if not line.strip() or not json.loads(line).get("ready"):
                raise RuntimeError(f"a worker did not start: {line.strip() or 'no output'}")
        return both_sides(cases, turns, ask, log=log)
    finally:
        for w in workers:
            w.stdin.close()
            w.wait()


class _ForkEnv:
    """What asv's ForkServer needs of an environment: this Python."""

    name = "paired-fresh"

    def __init__(self, env_vars):
        self.env_vars = env_vars

    def run(self, args, return_popen=False, redirect_stderr=False, env=None, **kw):
        # its own process group: ForkServer.close kills the group
        return subprocess.Popen([sys.executable] + args, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT if redirect_stderr else None, env=env, cwd=ROOT,
                                start_new_session=True)


def discover(benchmark_dir):
    """asv's benchmark list of ``benchmark_dir`` ({name: asv benchmark dict}), by asv's own discovery."""
    import tempfile

    from asv import runner

    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        proc = subprocess.run([sys.executable, runner.BENCHMARK_RUN_SCRIPT, "discover", benchmark_dir, path],
                              cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"asv's discovery failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        with open(path, encoding="utf-8") as f:
            return {b["name"]: b for b in json.load(f)}
    finally:
        os.remove(path)


def start_servers(env, count=2):
    """``count`` asv forkservers of this Python, the benchmarks imported."""
    from asv.runner import ForkServer

    servers = []
    try:
        for _ in range(count):
            servers.append(ForkServer(_ForkEnv(env), os.path.join(ROOT, "benchmarks")))
            ok, out = servers[-1].preimport()
            if not ok:
                raise RuntimeError(f"a forkserver could not import the benchmarks: {out.splitlines()[-1:]}")
    except BaseException:
        for sp in servers:
            sp.close()
        raise
    return servers


def param_index(bench, key):
    """The index of ``key``'s parameter combination in asv's benchmark dict."""
    import itertools

    for i, combo in enumerate(itertools.product(*bench["params"])):
        if f"{bench['name']}({', '.join(combo)})" == key:
            return i
    raise KeyError(key)


def fresh_side(bench, key, spawner, repeat=protocol.PROTOCOL_REPEAT):
    """One fresh process of ``key`` forked by ``spawner`` (asv's ForkServer),
    run by asv's runner with the protocol's repeat: its fastest sample, or
    {"failed": why}."""
    from asv import runner

    res = runner._run_benchmark_single_param(bench, spawner, param_index(bench, key), False,
                                             {"repeat": list(repeat)}, None)
    samples = [x for x in (res.samples[0] or []) if x is not None and x > 0] if res.errcode == 0 else []
    if not samples:
        return {"failed": (res.stderr or f"exit {res.errcode}").strip().splitlines()[-1][:200]}
    return {"seconds": min(samples)}


def fresh_pass(cases, benches, spawners, index, log=lambda m: None, run_side=fresh_side):
    """One pair of fresh processes a case, back to back, the first side
    alternating with the case and the pass: {key: {"a": [s], "b": [s]}} or
    {key: {"failed": why}}."""
    def ask(side, case):
        return run_side(benches[case[0].split("(")[0]], case[0], spawners[side])

    return both_sides(cases, 1, ask, first=index, log=log)


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


def _unpaired(pairs, keys, groups, alpha):
    """The two-sample test (the gate's, ``verdicts.decide``) on the same
    processes, every pair's sides taken as unpaired processes: a function
    decide(shift) giving the verdicts with case k's b side ``shift[k]`` times
    slower, all decided with the prior fitted on the A/A processes."""
    def comparisons(shift):
        # a side's worker (or fresh process) of each pair is one process; its
        # turns are its samples
        return [vd.Comparison(k, [list(p[k]["a"]) for p in pairs],
                              [[x * shift.get(k, 1.0) for x in p[k]["b"]] for p in pairs], groups[k])
                for k in keys]

    base = comparisons({})
    prior = vd.priors([(list(c.observations()), c.group) for c in base])

    def decide(shift):
        return {v.key: v for v in vd.decide(comparisons(shift), alpha=alpha, prior=prior)}

    return decide


def evaluate(pairs, seeds=(1, 2, 3, 4, 5), alpha=vd.ALPHA / LOOKS, unpaired=False):
    """The calibration's figures from recorded pairs (see the module docstring).
    ``unpaired``: decided by the gate's two-sample test instead, the pairing ignored."""
    obs = observations(pairs)
    keys = sorted(obs)
    groups = {k: vd.prior_group(KEY_RX.match(k).group(3), [[base_time(pairs, k)]]) for k in keys}
    if unpaired:
        decide2 = _unpaired(pairs, keys, groups, alpha)
        aa = decide2({})
    else:
        aa = vd.decide_paired({k: (obs[k], groups[k]) for k in keys}, alpha=alpha)
        prior = vd.paired_priors({k: (obs[k], groups[k]) for k in keys})
    long = {k for k in keys if base_time(pairs, k) >= 1e-3}
    found = {f: {"long": [0, 0], "all": [0, 0], "faster": 0} for f in FACTORS}
    for seed in seeds:
        rng = random.Random(seed)
        for f in FACTORS:
            chosen = set(rng.sample(keys, len(keys) // 3))
            if unpaired:
                verdicts = decide2({k: f for k in chosen})
            else:
                shifted = {k: ([d + math.log(f) for d in obs[k]] if k in chosen else obs[k], groups[k])
                           for k in keys}
                # The prior is the A/A run's: an injection shifts means, not variances.
                verdicts = vd.decide_paired(shifted, alpha=alpha, prior=prior)
            for k in chosen:
                hit = verdicts[k].verdict == vd.SLOWER
                for scope in (("long", "all") if k in long else ("all",)):
                    found[f][scope][0] += hit
                    found[f][scope][1] += 1
                found[f]["faster"] += verdicts[k].verdict == vd.FASTER
    mde = {k: aa[k].minimum_detectable_effect(alpha=alpha) for k in keys}
    return {"verdicts": aa, "mde": mde, "found": found, "long": long, "n_pairs": len(pairs),
            "test": "unpaired (two-sample)" if unpaired else "paired"}


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

    lines = [f"A/A, {ev['n_pairs']} pairs, {ev.get('test', 'paired')} test, {len(verdicts)} cases: "
             f"{len(alarms)} false alarms "
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


def gates_text(pairs, gates, seeds=(1, 2, 3, 4, 5)):
    """The recorded passes split into ``gates`` consecutive groups, each decided
    as one gate (A/A alarms, injected slowdowns found), by the paired test
    and by the two-sample test on the same processes; totals over the groups."""
    size = len(pairs) // gates
    if size < 2:
        raise ValueError(f"{len(pairs)} recorded pairs can't make {gates} gates of at least 2")
    lines = [f"{gates} gates of {size} pairs each (passes {size * gates} of {len(pairs)} recorded)", "",
             "| test | A/A false alarms | gates with one | same | +5% found (>= 1 ms) | +10% | +20% | "
             "called faster | MDE median (>= 1 ms) |", "|---|---|---|---|---|---|---|---|---|"]
    for unpaired in (False, True):
        alarms = runs_with = same = n = faster = 0
        hits = {f: [0, 0] for f in FACTORS}
        mdes = []
        for g in range(gates):
            ev = evaluate(pairs[g * size:(g + 1) * size], seeds=seeds, unpaired=unpaired)
            a = sum(v.verdict in (vd.SLOWER, vd.FASTER) for v in ev["verdicts"].values())
            alarms += a
            runs_with += a > 0
            same += sum(v.verdict == vd.SAME for v in ev["verdicts"].values())
            n += len(ev["verdicts"])
            for f, r in ev["found"].items():
                hits[f][0] += r["long"][0]
                hits[f][1] += r["long"][1]
                faster += r["faster"]
            mdes += [m for k, m in ev["mde"].items() if k in ev["long"] and not math.isnan(m)]
        cells = [f"{h} of {t} ({100 * h / max(t, 1):.0f}%)" for h, t in hits.values()]
        med = statistics.median(mdes) if mdes else math.nan
        lines.append(f"| {'two-sample (unpaired)' if unpaired else 'paired'} | {alarms} of {n} | {runs_with} of "
                     f"{gates} | {same} | {' | '.join(cells)} | {faster} | {100 * med:.1f}% |")
    lines += ["", "Spread, cases of 1 ms or more (median over cases of the standard deviation over all these "
              "passes of the log ratio of a pair's sides, and of one side's log):"]
    obs = observations(pairs)
    for backend in sorted({KEY_RX.match(k).group(3) for k in obs}):
        paired_sd, side_sd = [], []
        for k, d in obs.items():
            if KEY_RX.match(k).group(3) != backend or base_time(pairs, k) < 1e-3 or len(d) < 2:
                continue
            paired_sd.append(statistics.stdev(d))
            side_sd.append(statistics.stdev([math.log(x) for p in pairs for x in p[k]["a"]]))
        if paired_sd:
            lines.append(f"- {backend}: pairs {100 * statistics.median(paired_sd):.2f}%, one side "
                         f"{100 * statistics.median(side_sd):.2f}% ({len(paired_sd)} cases)")
    return "\n".join(lines)


def main(argv=None):
    ap = cli.parser(__doc__)
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
    ap.add_argument("--fresh", action="store_true",
                    help="pairs of fresh processes a case (asv's forkserver and runner), not long-lived workers")
    ap.add_argument("--gates", type=int, default=0,
                    help="with --summary: decide the passes as this many gates, paired and unpaired")
    ap.add_argument("--first", type=int, default=0,
                    help="with --summary: only the first N recorded pairs (a gate's time holds about 3 passes)")
    ap.add_argument("--folder", help="where a run's files go (default .asv/paired/paired-<time>)")
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
        if args.first:
            saved["pairs"] = saved["pairs"][:args.first]
        if args.gates:
            try:
                print(gates_text(saved["pairs"], args.gates))
            except ValueError as e:
                print(f"paired: {e}; give fewer --gates", file=sys.stderr)
                return 2
            return 0
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
    folder = args.folder or os.path.join(ROOT, ".asv", "paired", time.strftime("paired-%Y%m%d-%H%M%S"))
    os.makedirs(folder, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)

    def launch():
        return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    pairs, took = [], []
    kind = "passes of fresh-process pairs" if args.fresh else f"pairs x {args.turns} turns"
    print(f"paired: {len(cases)} cases, {args.pairs} {kind}; {len(left)} left out; "
          f"into {os.path.relpath(folder, ROOT)}", flush=True)
    spawners = []
    try:
        if args.fresh:
            benches = discover(os.path.join(ROOT, "benchmarks"))
        for i in range(args.pairs):
            started = time.time()
            if args.fresh:
                # New servers every pass, as asv starts one per side per `asv run`
                # (a gate's round): a forked child inherits its server's layout
                # (libraries' addresses, the heap after the imports), so children
                # of one server share an effect of their own. Measured: with two
                # servers kept for 3 passes, torch's MatMul 1000x64x256 ran 22-29%
                # faster on one side in every pass (an A/A false alarm).
                spawners[:] = start_servers(env)
                pairs.append(fresh_pass(cases, benches, spawners, i, log=lambda m: print(m, flush=True)))
                for sp in spawners:
                    sp.close()
                spawners.clear()
            else:
                pairs.append(run_pair(cases, args.turns, launch, log=lambda m: print(m, flush=True)))
            took.append(time.time() - started)
            print(f"paired: pair {i + 1} of {args.pairs} took {took[-1] / 60:.1f} min", flush=True)
            with open(os.path.join(folder, "pairs.json"), "w", encoding="utf-8") as f:
                json.dump({"pairs": pairs, "seconds_a_pair": statistics.median(took), "left_out": left,
                           "turns": 1 if args.fresh else args.turns, "bench": args.bench,
                           "fresh": args.fresh}, f)
    except RuntimeError as e:
        print(f"paired: pair {len(pairs) + 1}: {e}", file=sys.stderr)
        return 1
    finally:
        for sp in spawners:
            sp.close()
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
