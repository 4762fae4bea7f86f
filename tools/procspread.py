#!/usr/bin/env python3
"""How much do processes of the same build differ, launched one way or another?

    python tools/procspread.py --processes 8
    python tools/procspread.py --processes 8 --variants base,noaslr

The verdicts' power on this machine is limited by the spread between
processes of one build (README, "What the targets would take here"). This
tool measures that spread under launch variants that could reduce it:

- ``base``: a plain child process;
- ``noaslr``: address-space randomisation off (``setarch -R``) and
  ``PYTHONHASHSEED=0``, so every process gets the same memory layout;
- ``thp``: glibc's malloc asks for transparent huge pages
  (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``; the kernel here is in
  ``madvise`` mode, so without it large arrays get 4 KiB pages);
- ``noaslr_thp``: both.

Each child process builds the cases (the very callables asv times, from
``benchmarks.ops``), calls each once, then takes ``SAMPLES`` samples of
``SAMPLE_SECONDS`` each (at least one call) and reports the fastest time a call, as the verdicts
take a process's observation (reporting/verdicts.py,
``process_observations``). The parent runs the variants interleaved, the
order reversed every other process, so a drift of the machine falls on all
variants alike, and prints each case's standard deviation of the log of its
processes' observations (about the relative spread) and their geometric mean.
Output: a table on stdout; ``--json`` keeps the raw observations.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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

VARIANTS = ("base", "noaslr", "thp", "noaslr_thp")
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


def fastest_call(fn, samples=SAMPLES, sample_seconds=SAMPLE_SECONDS, clock=time.perf_counter):
    """Seconds a call in the fastest of ``samples`` samples, after one warm-up call."""
    fn()
    start = clock()
    fn()
    one = clock() - start
    number = max(1, int(sample_seconds / max(one, 1e-6)))
    best = math.inf
    for _ in range(samples):
        start = clock()
        for _ in range(number):
            fn()
        best = min(best, (clock() - start) / number)
    return best


def child(cases):
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from benchmarks import ops

    out = {}
    for family, label, backend in cases:
        out[f"{family}|{label}|{backend}"] = fastest_call(getattr(ops, family).callable(label, backend))
    print(json.dumps(out))


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=8, help="processes a variant (default 8)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--json", help="write the raw observations here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(DEFAULT_CASES)
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
            p = subprocess.run(prefix + [sys.executable, os.path.abspath(__file__), "--child"],
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
    print(table(results, variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
