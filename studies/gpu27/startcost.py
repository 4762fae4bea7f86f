"""What a GPU case process of asv's forkserver spends before its first call (issue 27, fourth session).

    python3 -m studies.gpu27.startcost [--reps 3] [--out FILE.jsonl]

The parent imports NumPy and torch, as asv's forkserver does on a CUDA machine
(benchmarks/common.py, ``server_imports``), then forks children one after the other,
each timing one start:

- ``mlx``: ``import mlx.core`` (MLX's CUDA build: its libraries loaded, no CUDA call yet),
  then the first GPU evaluation (``mx.eval`` of a small array on ``mx.gpu``: CUDA's
  context, MLX's device and stream);
- ``torch``: the first CUDA tensor and ``torch.cuda.synchronize`` (the context);
- ``mlx_preloaded``: as ``mlx``, after the parent loaded (``ctypes.CDLL``, RTLD_GLOBAL)
  the shared libraries that MLX's import maps, but not MLX's own (libmlx.so, core*.so)
  and not libcuda: does loading the libraries before the fork save the child's import?
  The list of libraries is read from /proc/self/maps of a separate process that imported
  MLX (the parent itself never imports MLX);
- ``mlx_lib_preloaded``: as ``mlx_preloaded``, after the parent also loaded libmlx.so itself
  (its static initializers run in the parent; not MLX's Python module): last, since it
  changes the parent for good.

One JSON line a child: {"variant", "rep", "import_s", "first_eval_s", "ok"}; a summary
(median of each variant) to stderr. Only wall-clock differences; nothing of asv is timed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

MAPS = r"""
import mlx.core as mx
mx.eval(mx.zeros((4,), stream=mx.gpu))
seen = []
for line in open('/proc/self/maps'):
    parts = line.split()
    if len(parts) >= 6 and '.so' in parts[-1] and parts[-1] not in seen:
        seen.append(parts[-1])
print('\n'.join(seen))
"""


def child(variant, conn_w):
    t0 = time.perf_counter()
    ok = True
    imp = first = None
    try:
        if variant.startswith("mlx"):
            import mlx.core as mx
            imp = time.perf_counter() - t0
            t1 = time.perf_counter()
            mx.eval(mx.zeros((4,), stream=mx.gpu) + 1)
            first = time.perf_counter() - t1
        else:
            import torch
            t1 = time.perf_counter()
            x = torch.zeros(4, device="cuda") + 1
            torch.cuda.synchronize()
            del x
            first = time.perf_counter() - t1
            imp = t1 - t0
    except Exception as e:  # noqa: BLE001 - reported
        ok = f"{type(e).__name__}: {e}"
    os.write(conn_w, json.dumps({"import_s": imp, "first_eval_s": first, "ok": ok}).encode())
    os._exit(0)


def fork_one(variant):
    r, w = os.pipe()
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(variant, w)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - t
    try:
        row = json.loads(data.decode())
    except ValueError:
        row = {"import_s": None, "first_eval_s": None, "ok": f"child died, status {status}"}
    row["child_wall_s"] = round(wall, 4)
    return row


def mlx_libraries():
    out = subprocess.run([sys.executable, "-c", MAPS], capture_output=True, text=True, timeout=120)
    libs = [p for p in out.stdout.split() if p.startswith("/")]
    skip = ("libmlx", "/mlx/core", "libcuda.so", "python3", "libc.so", "ld-linux", "libm.so", "libpthread")
    return [p for p in libs if not any(s in p for s in skip)], libs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    import numpy  # noqa: F401 - as the forkserver
    import torch  # noqa: F401

    preload, every = mlx_libraries()
    rows = []
    variants = ("mlx", "torch", "mlx_preloaded", "mlx_lib_preloaded")
    for variant in variants:
        if variant == "mlx_lib_preloaded":
            for p in [x for x in every if "libmlx" in x]:
                t = time.perf_counter()
                ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)
                sys.stderr.write(f"startcost: parent loaded {p} in {time.perf_counter() - t:.2f} s\n")
        if variant == "mlx_preloaded":
            t = time.perf_counter()
            loaded = 0
            for p in preload:
                try:
                    ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)
                    loaded += 1
                except OSError as e:
                    sys.stderr.write(f"startcost: {p}: {e}\n")
            sys.stderr.write(f"startcost: parent loaded {loaded} of {len(preload)} libraries "
                             f"({len(every)} mapped by MLX's import) in {time.perf_counter() - t:.2f} s\n")
        for rep in range(args.reps):
            row = dict(variant=variant, rep=rep, **fork_one(variant))
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
            f.write(json.dumps({"preload": preload, "mapped": every}) + "\n")
    for variant in variants:
        got = [r for r in rows if r["variant"] == variant and r["ok"] is True]
        if got:
            sys.stderr.write(f"startcost: {variant}: import {statistics.median(r['import_s'] for r in got):.3f} s, "
                             f"first evaluation {statistics.median(r['first_eval_s'] for r in got):.3f} s, "
                             f"child {statistics.median(r['child_wall_s'] for r in got):.3f} s "
                             f"(median of {len(got)})\n")
        bad = [r["ok"] for r in rows if r["variant"] == variant and r["ok"] is not True]
        if bad:
            sys.stderr.write(f"startcost: {variant}: {len(bad)} failed: {bad[0]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
