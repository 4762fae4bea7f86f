#!/usr/bin/env python3
"""How much do processes of the same build differ, launched one way or another?

    python studies/procspread.py --processes 8
    python studies/procspread.py --processes 8 --variants base,noaslr
    python studies/procspread.py --processes 6 --rebuilds 4
    python studies/procspread.py --processes 5 --pairs 6

The verdicts' power on this machine is limited by the spread between
processes of one build (README, "What the targets would take here"). This
tool measures that spread under launch variants that could reduce it:

- ``base``: a plain child process;
- ``noaslr``: address-space randomisation off (``setarch -R``) and
  ``PYTHONHASHSEED=0``, so every process gets the same memory layout;
- ``thp``: glibc's malloc asks for transparent huge pages
  (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``; the kernel here is in
  ``madvise`` mode, so without it large arrays get 4 KiB pages);
- ``noaslr_thp``: both;
- ``fixedmalloc``: glibc's malloc thresholds fixed at their defaults
  (``glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072``),
  which turns off their adjustment to what the process freed before: with
  it, a large output is fresh pages in every process, whatever the process
  did before (see the README, "Where the spread comes from");
- ``heapmalloc``: the thresholds fixed high instead (mmap at 32 MiB, the
  most glibc takes; trim at 1 GiB): blocks up to 32 MiB come from the heap,
  reused, in every process;
- ``cputime``: launched as ``base``, but timed by the process's CPU time
  (``time.process_time``: all its threads) instead of the wall clock, so
  that time the process waits (other processes on its core, the hypervisor)
  does not count. Not a launch variant but a clock, measured the same way.

Each child process builds the cases (the very callables asv times, from
``benchmarks.ops``), calls each once, then takes ``SAMPLES`` samples of
``SAMPLE_SECONDS`` each (at least one call) and reports the fastest time a call, as the verdicts
take a process's observation (mlx_asv/decide/verdicts.py,
``process_observations``). The parent runs the variants interleaved, the
order reversed every other process, so a drift of the machine falls on all
variants alike, and prints each case's standard deviation of the log of its
processes' observations (about the relative spread) and their geometric mean.
Output: a table on stdout; ``--json`` keeps the raw observations.

``--rebuilds R`` asks where a process's offset comes from instead (default
launch only). Each process measures every case R times, spread over its
life (the cases in turn), twice each time: ``kept``, the callable built
once (as asv's process does: one build, its inputs in the same buffers for
every sample), and ``fresh``, the case built again (its inputs read into new
buffers, the backend's arrays made anew) and dropped after. The table
splits each variance into a part between processes and a part within one
(one-way analysis of variance of the logs): if the offset of a process
came from where its buffers happen to lie (pages, cache sets), ``fresh``
moves it inside a process, and the mean of R fresh builds spreads less
between processes than one build does; if it came from the process itself
or the moment it ran, neither helps.

``--pairs R`` asks whether measuring the two sides of a comparison close
together in time cancels the machine's drift: a pair of worker processes
(the same build: an A/A pair) hold every case built, and the parent asks
them in turn, A then B (B then A every other time), R times a case, each
measurement a few tenths of a second. The table gives, per case, the
spread of one side's measurements inside its process (what a moment of
the machine adds), that of the paired log ratio A/B of one turn, and the
spread between pairs of the mean paired ratio: the observation a paired
test would take from each pair of processes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

from benchmarks.lib.timing import call_seconds
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The child processes run this module with -m from ROOT, so that Python finds
# this checkout's benchmarks and package first, without editing sys.path.
CHILD_MODULE = "studies.procspread"

# (family in benchmarks/ops.py, case label, backend): 1 ms to 1.3 s on this
# machine, both frameworks, several among the noisiest of the A/A gates.
DEFAULT_CASES = (
    ("LayerNorm", "dim=64x128x1024", "mlx_cpu"),
    ("LayerNorm", "dim=128x64x1024", "mlx_cpu"),
    ("SumAll", "dim=64x128x128x128", "mlx_cpu"),
    ("Gather", "dim=64x16 dim=1000000", "mlx_cpu"),
    ("Softmax", "dim=64x1000000 axis=-1", "mlx_cpu"),
    ("Sum", "dim=64x128x128x128 axis=1", "torch_cpu"),
    ("Softplus", "dim=128x16x1024", "torch_cpu"),
    ("ReLU", "dim=128x16x1024", "torch_cpu"),
    ("Argmax", "dim=64x1024x128 axis=0", "torch_cpu"),
    ("Conv2d", "dim=10x256x256x12 dim=8x3x3x12", "torch_cpu"),
)

VARIANTS = ("base", "noaslr", "thp", "noaslr_thp", "fixedmalloc", "heapmalloc", "cputime")
CLOCK_ENV = "MLX_ASV_PROCSPREAD_CLOCK"
FIXED_MALLOC = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"
HEAP_MALLOC = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
SAMPLES = 7
SAMPLE_SECONDS = 0.02


def launch(variant, environ=None):
    """(command prefix, environment) of a child process under ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    env = dict(os.environ if environ is None else environ)
    prefix = []
    if variant.startswith("noaslr"):
        prefix = ["setarch", platform.machine(), "-R"]
        env["PYTHONHASHSEED"] = "0"
    if variant.endswith("thp"):
        env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1"
    if variant == "fixedmalloc":
        env["GLIBC_TUNABLES"] = FIXED_MALLOC
    if variant == "heapmalloc":
        env["GLIBC_TUNABLES"] = HEAP_MALLOC
    if variant == "cputime":
        env[CLOCK_ENV] = "process"
    return prefix, env


def order_of(variants, index):
    """The variants' order in process ``index``: as given, reversed every other."""
    return list(variants) if index % 2 == 0 else list(variants)[::-1]


def spread(observations):
    """{case: (sd of log, geometric mean)} of one variant's processes."""
    out = {}
    for key in observations[0]:
        logs = [math.log(o[key]) for o in observations]
        sd = statistics.stdev(logs) if len(logs) > 1 else float("nan")
        out[key] = (sd, math.exp(statistics.fmean(logs)))
    return out


def fastest_call(fn, samples=SAMPLES, sample_seconds=SAMPLE_SECONDS, clock=time.perf_counter, budget=None):
    """Seconds a call in the fastest of ``samples`` samples, after one warm-up call.

    With ``budget`` (seconds), at most as many samples as fit in it, and at
    least one (studies/paired.py: its dear cases get fewer)."""
    # one timed call after the warm-up sets how many calls fill a sample
    one = max(call_seconds(fn, warmup=1, clock=clock)[0], 1e-7)
    number = max(1, int(sample_seconds / one))
    count = samples if budget is None else max(1, min(samples, int(budget / (one * number))))
    return min(call_seconds(fn, samples=count, number=number, clock=clock))


def child(cases):
    from benchmarks import ops

    clock = time.process_time if os.environ.get(CLOCK_ENV) == "process" else time.perf_counter
    out = {}
    for family, label, backend in cases:
        out[f"{family}|{label}|{backend}"] = fastest_call(getattr(ops, family).callable(label, backend), clock=clock)
    print(json.dumps(out))


def fresh_callable(family, label, backend_name):
    """The case built again, bypassing the per-process cache: new input
    buffers and new backend arrays, as another process would build it."""
    from benchmarks import common, ops

    cls = getattr(ops, family)
    be = common.backend(backend_name)
    be.activate()
    return cls().build(be, cls.case(label).args, (cls.__module__, cls.__name__, label, False))


def child_rebuilds(cases, rebuilds):
    from benchmarks import ops

    kept = {}
    out = {}
    for r in range(rebuilds):
        for family, label, backend in cases:
            key = f"{family}|{label}|{backend}"
            if key not in kept:
                kept[key] = getattr(ops, family).callable(label, backend)
                out[key] = {"kept": [], "fresh": []}
            # Alternate which goes first, so neither always follows a build.
            for kind in (("kept", "fresh") if r % 2 == 0 else ("fresh", "kept")):
                if kind == "kept":
                    out[key]["kept"].append(fastest_call(kept[key]))
                else:
                    fn = fresh_callable(family, label, backend)
                    out[key]["fresh"].append(fastest_call(fn))
                    del fn
    print(json.dumps(out))


def worker(cases):
    """Build every case, then answer each line ``i`` on stdin with the
    fastest call of case ``i`` (fastest_call), until stdin closes."""
    from benchmarks import ops

    fns = [getattr(ops, family).callable(label, backend) for family, label, backend in cases]
    print("ready", flush=True)
    for line in sys.stdin:
        print(repr(fastest_call(fns[int(line)])), flush=True)


def measure_pair(cases, turns, launch_one):
    """{case key: {"a": [...], "b": [...]}} from two workers asked in turn.

    ``launch_one()`` starts a worker (a Popen with pipes). In every turn,
    each case is measured on both sides back to back; which side goes first
    alternates by turn and case, so neither always runs second.
    """
    workers = [launch_one(), launch_one()]
    try:
        for w in workers:
            line = w.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start: {line.strip() or 'no output'}")
        out = {f"{f}|{l}|{b}": {"a": [], "b": []} for f, l, b in cases}
        for t in range(turns):
            for i, (f, l, b) in enumerate(cases):
                order = (0, 1) if (t + i) % 2 == 0 else (1, 0)
                for side in order:
                    w = workers[side]
                    w.stdin.write(f"{i}\n")
                    w.stdin.flush()
                    answer = w.stdout.readline()
                    if not answer.strip():
                        raise RuntimeError(f"a worker stopped measuring {f} {l} {b}")
                    out[f"{f}|{l}|{b}"]["ab"[side]].append(float(answer))
        return out
    finally:
        for w in workers:
            w.stdin.close()
            w.wait()


def pair_table(pairs):
    """Per case: one side's sd inside its process, the sd of one turn's
    paired log ratio, and the sd between pairs of their mean log ratio."""
    keys = list(pairs[0])
    rows = []
    for k in keys:
        one_side = statistics.fmean(statistics.stdev(math.log(x) for x in p[k]["a"]) for p in pairs)
        ratios = [[math.log(a / b) for a, b in zip(p[k]["a"], p[k]["b"])] for p in pairs]
        one_turn = statistics.fmean(statistics.stdev(r) for r in ratios)
        between = statistics.stdev(statistics.fmean(r) for r in ratios)
        first = statistics.stdev(r[0] for r in ratios)
        t = math.exp(statistics.fmean(math.log(x) for p in pairs for x in p[k]["a"]))
        rows.append((k, one_side, one_turn, first, between, t))
    lines = ["| case | one side, inside its process | A/B of one turn | A/B of a pair's first turn, between pairs "
             "| A/B mean of a pair's turns, between pairs | time |",
             "|---|---|---|---|---|---|"]
    for k, a, r, f, b, t in rows:
        lines.append(f"| {k} | {100 * a:.1f}% | {100 * r:.1f}% | {100 * f:.1f}% | {100 * b:.1f}% | {1e3 * t:.1f} ms |")
    med = [statistics.median(r[i] for r in rows) for i in range(1, 5)]
    lines.append("| median | " + " | ".join(f"{100 * m:.2f}%" for m in med) + " | |")
    return "\n".join(lines)


def variance_parts(groups):
    """(sd between, sd within) of the logs of ``groups`` (a list per
    process): one-way analysis of variance, balanced groups of n.

    Within: the pooled sd inside a group. Between: the sd of a group's
    own offset, sqrt(max(0, var of group means - within^2 / n)).
    """
    n = len(groups[0])
    logs = [[math.log(x) for x in g] for g in groups]
    means = [statistics.fmean(g) for g in logs]
    within2 = statistics.fmean(statistics.variance(g) for g in logs) if n > 1 else 0.0
    between2 = max(0.0, statistics.variance(means) - within2 / n)
    return math.sqrt(between2), math.sqrt(within2)


def rebuild_table(processes):
    """Per case: sd between processes of one build's first observation (as
    asv's process gives), the parts of ``kept`` and ``fresh``, and the sd
    between processes of the mean of a process's R fresh builds."""
    keys = list(processes[0])
    rows = []
    for k in keys:
        first = [p[k]["kept"][0] for p in processes]
        one = statistics.stdev(math.log(x) for x in first)
        kb, kw = variance_parts([p[k]["kept"] for p in processes])
        fb, fw = variance_parts([p[k]["fresh"] for p in processes])
        fresh_mean = statistics.stdev(statistics.fmean(math.log(x) for x in p[k]["fresh"]) for p in processes)
        rows.append((k, one, kb, kw, fb, fw, fresh_mean, math.exp(statistics.fmean(math.log(x) for x in first))))
    lines = ["| case | one build: sd between processes | kept: between / within | fresh: between / within "
             "| mean of the fresh builds: sd between processes | time |",
             "|---|---|---|---|---|---|"]
    for k, one, kb, kw, fb, fw, fm, t in rows:
        lines.append(f"| {k} | {100 * one:.1f}% | {100 * kb:.1f}% / {100 * kw:.1f}% | "
                     f"{100 * fb:.1f}% / {100 * fw:.1f}% | {100 * fm:.1f}% | {1e3 * t:.1f} ms |")
    med = [statistics.median(r[i] for r in rows) for i in range(1, 7)]
    lines.append(f"| median | {100 * med[0]:.2f}% | {100 * med[1]:.2f}% / {100 * med[2]:.2f}% | "
                 f"{100 * med[3]:.2f}% / {100 * med[4]:.2f}% | {100 * med[5]:.2f}% | |")
    return "\n".join(lines)


def table(results, variants):
    per = {v: spread(results[v]) for v in variants}
    keys = list(per[variants[0]])
    lines = ["| case | " + " | ".join(f"{v}: sd / time" for v in variants) + " |",
             "|---|" + "---|" * len(variants)]
    for k in keys:
        cells = [f"{100 * per[v][k][0]:.1f}% / {1e3 * per[v][k][1]:.1f} ms" for v in variants]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    med = [f"{100 * statistics.median(per[v][k][0] for k in keys):.2f}%" for v in variants]
    lines.append("| median sd | " + " | ".join(med) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("--processes", type=int, default=8, help="processes a variant (default 8)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--rebuilds", type=int, default=0,
                    help="instead: measure each case R times a process, kept and built afresh (see above)")
    ap.add_argument("--pairs", type=int, default=0,
                    help="instead: A/A pairs of workers asked in turn, R turns a case (see above)")
    ap.add_argument("--json", help="write the raw observations here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(DEFAULT_CASES)
        return 0
    if args.child:
        if args.rebuilds:
            child_rebuilds(DEFAULT_CASES, args.rebuilds)
        else:
            child(DEFAULT_CASES)
        return 0
    if args.rebuilds == 1 or args.rebuilds < 0:
        print("procspread: --rebuilds must be at least 2 (a spread within a process needs two)", file=sys.stderr)
        return 2
    if args.rebuilds:
        args.variants = "base"
    if args.pairs:
        if args.pairs < 2 or args.processes < 2:
            print("procspread: --pairs and --processes must be at least 2", file=sys.stderr)
            return 2

        def launch_one():
            return subprocess.Popen([sys.executable, "-m", CHILD_MODULE, "--worker"], cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        pairs = []
        for i in range(args.processes):
            try:
                pairs.append(measure_pair(DEFAULT_CASES, args.pairs, launch_one))
            except RuntimeError as e:
                print(f"procspread: {e}", file=sys.stderr)
                return 1
            print(f"procspread: pair {i + 1}/{args.processes}", file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(pairs, f, indent=1)
        print(pair_table(pairs))
        return 0
    variants = [v for v in args.variants.split(",") if v]
    try:
        launches = {v: launch(v) for v in variants}
    except ValueError as e:
        print(f"procspread: {e}", file=sys.stderr)
        return 2
    if args.processes < 2:
        print("procspread: --processes must be at least 2 (a spread needs two)", file=sys.stderr)
        return 2
    results = {v: [] for v in variants}
    for i in range(args.processes):
        for v in order_of(variants, i):
            prefix, env = launches[v]
            extra = ["--rebuilds", str(args.rebuilds)] if args.rebuilds else []
            p = subprocess.run(prefix + [sys.executable, "-m", CHILD_MODULE, "--child"] + extra,
                               capture_output=True, text=True, env=env, cwd=ROOT)
            if p.returncode:
                print(f"procspread: a {v} process failed (exit {p.returncode}): "
                      f"{(p.stderr.strip().splitlines() or ['no output'])[-1]}", file=sys.stderr)
                return 1
            results[v].append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(f"procspread: process {i + 1}/{args.processes} {v}", file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    print(rebuild_table(results["base"]) if args.rebuilds else table(results, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
