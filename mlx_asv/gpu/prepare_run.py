"""Before asv runs ops.py on a GPU machine: fill the input cache and MLX's
kernel cache once, in parallel, instead of in asv's case processes one by one.

    python3 -m mlx_asv.gpu.prepare_run [--bench REGEX] [--jobs N] [--no-inputs] [--no-kernels] [--small]

``mlx_asv/gpu/gpu_asv.sh`` runs it before ``asv run`` (``PREPARE=0`` skips it).
Both caches are what the case processes would fill themselves; filling them
first changes what a process spends before its first sample, never what is
timed:

- inputs: every selected case's seed-sized NumPy inputs, made by the
  suite's seeded generator and written to the input cache
  (``benchmarks/common.py``, ``cached_input``), in ``--jobs`` worker
  processes (NumPy only, no GPU). On the H200 the 84 files (11 GB) took
  6.2 s this way (docs/gpu.md's ``bash mlx_asv/gpu/gpu_asv.sh h200 REGEX`` command on
  a fresh machine); asv's processes made them one after the other (~70 s).
- kernels: MLX's CUDA backend compiles the kernels it generates (fused
  ``mx.compile`` graphs, which ``mlx.nn``'s activations are; gather and
  scatter) with NVRTC at their first call in a process, 1.5-4 s each, and
  keeps them in a folder on disk (``MLX_PTX_CACHE_DIR``, by default
  ``$TMPDIR/mlx/VERSION/ptx``) that later processes read. The kernel's name
  depends on the case and the backend, so on a machine whose folder is
  empty nearly every MLX process of those families compiled (measured on the
  H200, MLX 0.32.4: 1.5-2.1 s a process for LeakyReLU, PReLU, ReLU, SeLU and
  Softplus, 4 s for Compile, ~75 s a run). Here every selected case on
  ``mlx_gpu`` and ``mlx_gpu_compile`` is built and called once, at its
  seed size (``--small``: the tests' small size), one family per worker
  process at a time, so that no two processes write one kernel file. A
  stamp file in MLX's folder records the builds made, so the next run on
  the machine (e.g. ``mlx_asv/gpu/gpu_rounds.py``'s rounds) skips them.

A case that fails here (e.g. a known failure at the seed size) is reported
and left to asv, which records it. Exit status 0 unless the arguments are
wrong: a failed preparation costs time, not results.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time

from mlx_asv import cli

# A GPU host's python lacks the package: the workers run as ``python -m`` from here.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KERNEL_BACKENDS = ("mlx_gpu", "mlx_gpu_compile")
DEVICE_BACKENDS = ("mlx_gpu", "mlx_gpu_compile", "torch_cuda")  # benchmarks/device.py's


def cases(bench=None):
    """[(class name, label, backend, asv name)] of ops.py whose asv name matches ``bench``
    (as ``asv run -b`` matches: re.search on ``ops.Class.method('label', 'backend')``), or whose
    benchmarks/device.py mirror's name does (``device.Class.track_device_time('label', 'backend')``:
    the same callable, measured on the device)."""
    from benchmarks import ops
    from benchmarks.common import CaseTable

    pattern = re.compile(bench) if bench else None
    out = []
    for name in sorted(dir(ops)):
        cls = getattr(ops, name)
        if not (isinstance(cls, type) and issubclass(cls, CaseTable) and cls.cases):
            continue
        methods = [m for m in dir(cls) if m.startswith("time_")]
        for c in cls.cases:
            for be in cls.backends:
                asv_name = f"ops.{name}.{methods[0]}({c.label!r}, {be!r})"
                mirror = f"device.{name}.track_device_time({c.label!r}, {be!r})"
                if pattern is None or pattern.search(asv_name) or (be in DEVICE_BACKENDS and pattern.search(mirror)):
                    out.append((name, c.label, be, asv_name))
    return out


def _make_inputs(item):
    from benchmarks import common, ops

    name, label = item
    cls = getattr(ops, name)
    t = time.perf_counter()
    with common.read_only_inputs():  # a file made before is only mapped, not read
        cls().inputs(cls.case(label).args, (cls.__module__, cls.__name__, label, False))
    return time.perf_counter() - t


def fill_inputs(selected, jobs):
    """Make the seed-sized inputs of the selected cases (once per case) in ``jobs`` processes."""
    items = sorted({(name, label) for name, label, _, _ in selected})
    t = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(max(1, min(jobs, len(items) or 1))) as pool:
        pool.map(_make_inputs, items, chunksize=1)
    return len(items), time.perf_counter() - t


def kernel_groups(selected, jobs):
    """The MLX GPU builds, one list per worker; all builds of a family go to one worker."""
    families = {}
    for name, label, be, _ in selected:
        if be in KERNEL_BACKENDS:
            families.setdefault(name, []).append((name, label, be))
    groups = [[] for _ in range(max(1, jobs))]
    # the largest families first, each to the worker with the fewest builds so far
    for fam in sorted(families.values(), key=len, reverse=True):
        min(groups, key=len).extend(fam)
    return [g for g in groups if g]


def worker(items, small):
    """Build and call each (class, label, backend) once; one JSON line back."""
    from benchmarks import common, ops

    done, failed, skipped = 0, [], 0
    t = time.perf_counter()
    for name, label, be in items:
        cls = getattr(ops, name)
        try:
            cls.callable(label, be, small=small)  # builds, and calls it once
            done += 1
        except NotImplementedError:
            skipped += 1
        except Exception as e:  # noqa: BLE001 - reported, left to asv
            failed.append(f"{name} {label} {be}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        common.CACHE.clear()
    return {"done": done, "skipped": skipped, "failed": failed, "s": time.perf_counter() - t}


def kernel_stamp(selected, small):
    """The file that says these builds were made into MLX's kernel folder, or None
    where MLX has no such folder (a release without it, or no CUDA)."""
    import hashlib
    import tempfile

    try:
        import mlx.core as mx
    except ImportError:
        return None
    folder = os.environ.get("MLX_PTX_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "mlx", mx.__version__, "ptx")
    if not os.path.isdir(folder):
        return None
    builds = sorted(f"{n}|{label}|{be}" for n, label, be, _ in selected if be in KERNEL_BACKENDS)
    digest = hashlib.sha256(json.dumps([builds, small]).encode()).hexdigest()[:16]
    return os.path.join(folder, f"mlx-asv-prepared-{digest}")


def warm_kernels(selected, jobs, small):
    groups = kernel_groups(selected, jobs)
    env = dict(os.environ)
    env.pop("MLX_ASV_PROFILE", None)
    t = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-m", "mlx_asv.gpu.prepare_run", "--worker", json.dumps(g)]
                         + (["--small"] if small else []),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        for g in groups
    ]
    results = []
    for p, g in zip(procs, groups):
        out, err = p.communicate()
        try:
            results.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            why = (err.strip().splitlines() or [f"exit {p.returncode}"])[-1]
            results.append({"done": 0, "skipped": 0, "failed": [f"worker of {len(g)} builds: {why}"], "s": 0})
    return results, len(groups), time.perf_counter() - t


def main(argv=None):
    # the docstring's first line alone, as its --help has always read
    ap = cli.parser(__doc__.splitlines()[0], wrap=True)
    ap.add_argument("--bench", help="asv's -b regex (default: all of ops.py)")
    ap.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--no-inputs", action="store_true")
    ap.add_argument("--no-kernels", action="store_true")
    ap.add_argument("--small", action="store_true", help="build the kernels' cases at the tests' small size")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        items = [tuple(x) for x in json.loads(args.worker)]
        print(json.dumps(worker(items, args.small)))
        return 0
    from benchmarks import common

    selected = cases(args.bench)
    parts = []
    if not args.no_inputs and common.input_cache_dir() is not None:
        n, s = fill_inputs(selected, args.jobs)
        parts.append(f"inputs of {n} cases in {s:.1f} s")
    if not args.no_kernels:
        builds = [x for x in selected if x[2] in KERNEL_BACKENDS]
        if not builds:
            parts.append("no MLX GPU case selected")
        elif common.unavailable_reason("mlx_gpu") is not None:
            parts.append(f"kernels: none ({common.unavailable_reason('mlx_gpu')})")
        elif (stamp := kernel_stamp(selected, args.small)) is not None and os.path.exists(stamp):
            parts.append(f"kernels: built before ({stamp})")
        else:
            results, n_proc, s = warm_kernels(selected, args.jobs, args.small)
            failed = [f for r in results for f in r["failed"]]
            done = sum(r["done"] for r in results)
            skipped = sum(r["skipped"] for r in results)
            parts.append(f"kernels: {done} builds in {s:.1f} s over {n_proc} processes, "
                         f"{skipped} skipped, {len(failed)} failed")
            for f in failed:
                print(f"prepare_run: failed (left to asv): {f}", file=sys.stderr)
            # MLX made its kernel folder at the first build; mark these builds done there
            stamp = kernel_stamp(selected, args.small)
            if stamp is not None and not any("worker of" in f for f in failed):
                with open(stamp, "w", encoding="utf-8") as f:
                    f.write(f"{done} builds\n")
    print("prepare_run: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
