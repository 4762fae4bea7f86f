"""Where a per-case asv process spends its time before it times anything, on a GPU machine.

asv runs every (case, backend) in a process of its own. This measures the
parts of such a process's start, each in fresh processes:

- ``fresh``: a new interpreter (``python3 -c pass``), and one that imports
  NumPy, torch, ``mlx.core``, or both frameworks (what asv's "spawn" pays
  per case; wall time of the whole process, median of ``--repeat``);
- ``fork``: what a child forked from asv's forkserver pays, for each thing the
  server may hold: the server (a fresh process) imports ``PARENT`` and forks a
  child, which imports what is left, then runs a first MLX GPU op (this
  initializes MLX's CUDA backend) and a first torch CUDA op. A child killed by
  a signal, or one whose op fails, is reported as crashed: that is the test of
  "is forking safe after importing X".

Parents: ``none``; ``torch`` (torch + NumPy, what benchmarks/common.py's
server_imports gives where MLX is a CUDA build); ``torch+libmlx`` (MLX's
shared library ``mlx/lib/libmlx.so`` loaded with ``dlopen``, its
dependencies resolved and its static initializers run, but ``mlx.core`` not
imported: is that safe to fork, and what does it save?); ``torch+mlx`` (MLX imported
too, no device touched: the CPU-box server); ``torch+mlx+gpu`` (the parent has
run an MLX GPU op, so CUDA is initialized before the fork).

    python3 -m studies.launch_cost [--repeat 3] [--json OUT.json] [--parents torch,torch+libmlx] [--no-fresh]

Needs MLX (a CUDA build) and torch with CUDA; prints a table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from mlx_asv import cli

CHILD = r"""
import json, os, sys, time
t = {}
def step(name, fn):
    t0 = time.perf_counter(); fn(); t[name] = time.perf_counter() - t0
parent = sys.argv[1]
held = parent.split("+")
step("parent_import_torch", lambda: __import__("torch")) if "torch" in held else None
if "libmlx" in held:
    import ctypes, glob, importlib.util
    spec = importlib.util.find_spec("mlx")
    libs = [p for loc in spec.submodule_search_locations for p in glob.glob(os.path.join(loc, "lib", "libmlx.so"))]
    step("parent_dlopen_libmlx", lambda: ctypes.CDLL(libs[0], mode=os.RTLD_NOW | os.RTLD_GLOBAL))
if "mlx" in held:
    step("parent_import_mlx", lambda: __import__("mlx.core"))
if "gpu" in held:
    import mlx.core as mx
    step("parent_mlx_gpu_op", lambda: mx.eval(mx.ones((256, 256)) @ mx.ones((256, 256))))
r, w = os.pipe()
t_fork = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.close(r)
    c = {"fork": time.perf_counter() - t_fork}
    def cstep(name, fn):
        t0 = time.perf_counter(); fn(); c[name] = time.perf_counter() - t0
    cstep("import_torch", lambda: __import__("torch"))
    cstep("import_mlx", lambda: __import__("mlx.core"))
    import mlx.core as mx, torch
    cstep("mlx_first_gpu_op", lambda: mx.eval(mx.ones((256, 256), dtype=mx.float32) @ mx.ones((256, 256))))
    cstep("mlx_second_gpu_op", lambda: mx.eval(mx.ones((256, 256)) @ mx.ones((256, 256))))
    def torch_op():
        a = torch.ones((256, 256), device="cuda"); (a @ a).sum().item(); torch.cuda.synchronize()
    cstep("torch_first_cuda_op", torch_op)
    ok = float((mx.ones((4, 4)) @ mx.ones((4, 4))).sum().item()) == 64.0
    c["ok"] = ok
    os.write(w, json.dumps(c).encode()); os.close(w)
    os._exit(0)
os.close(w)
data = b""
while True:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    data += chunk
_, status = os.waitpid(pid, 0)
child = json.loads(data) if data else {}
child["total"] = time.perf_counter() - t_fork
print(json.dumps({"parent": t, "child": child, "status": status,
                  "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}))
"""

FRESH = {
    "python -c pass": "pass",
    "import numpy": "import numpy",
    "import torch": "import torch",
    "import mlx.core": "import mlx.core",
    "import torch, mlx.core": "import torch, mlx.core",
    "import torch + first CUDA op": "import torch; a = torch.ones(4, device='cuda'); a.sum().item()",
    "import mlx.core + first GPU op": "import mlx.core as mx; mx.eval(mx.ones((4, 4)) @ mx.ones((4, 4)))",
}


def wall(args, env=None, timeout=300):
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    return time.perf_counter() - t0, proc


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--parents", default="none,torch,torch+libmlx,torch+mlx,torch+mlx+gpu",
                    help="what the forking parent holds, comma-separated (see the docstring)")
    ap.add_argument("--no-fresh", action="store_true", help="only the forked children")
    args = ap.parse_args(argv)
    out = {"fresh": {}, "fork": {}}
    for name, code in ({} if args.no_fresh else FRESH).items():
        times = []
        for _ in range(args.repeat):
            dt, proc = wall([sys.executable, "-c", code])
            if proc.returncode != 0:
                times = None
                out["fresh"][name] = {"error": proc.stderr.strip().splitlines()[-1:]}
                break
            times.append(dt)
        if times:
            out["fresh"][name] = {"median_s": statistics.median(times), "times": times}
    for parent in args.parents.split(","):
        runs = []
        for _ in range(args.repeat):
            dt, proc = wall([sys.executable, "-c", CHILD, parent])
            try:
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                runs.append({"error": (proc.stderr.strip().splitlines() or ["no output"])[-1], "rc": proc.returncode})
        out["fork"][parent] = runs
    print(f"{'fresh process':40s} median s")
    for name, r in out["fresh"].items():
        print(f"{name:40s} {r.get('median_s', float('nan')):.3f} {r.get('error', '')}")
    keys = ("fork", "import_torch", "import_mlx", "mlx_first_gpu_op", "mlx_second_gpu_op", "torch_first_cuda_op", "total")
    print("fork: parent holds | " + " | ".join(keys) + " | crashed")
    for parent, runs in out["fork"].items():
        good = [r["child"] for r in runs if r.get("child") and r["child"].get("ok") and r.get("exit") == 0]
        crashed = len(runs) - len(good)
        cols = [f"{statistics.median([g[k] for g in good if k in g]):.3f}" if good else "-" for k in keys]
        why = "; ".join(str(r.get("signal") or r.get("error") or r.get("exit")) for r in runs if r.get("child") is None or not r["child"].get("ok"))
        print(f"{parent:18s} | " + " | ".join(cols) + f" | {crashed}/{len(runs)} {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
