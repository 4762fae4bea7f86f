#!/usr/bin/env python3
"""Check and time our batched small-matrix kernels on a GPU machine; no asv needed.

Meant for an NVIDIA machine with MLX's CUDA build (``pip install mlx[cuda13]``
or ``mlx-cuda-13``), numpy and a CUDA torch; pytest is optional. From the
repository root::

    python3.12 -m mlx_asv.gpu.device_kernels_check      # tests + table
    python3.12 -m mlx_asv.gpu.device_kernels_check --json out.json --min-calls 50

It

1. prints the environment (MLX version, GPU kind, whether
   mx.fast.cuda_kernel / metal_kernel can run, torch and its device);
2. runs the CUDA-kernel tests: ``pytest tests/test_metal_kernels.py -k
   "cuda or mirror or config"`` if pytest is installed, and always its own
   checks below (our kernel against float64 NumPy, the pure-MLX form and
   torch.linalg, edge cases included);
3. prints a Markdown table at seed 003's shapes: the median time of
   synchronized calls of our kernel, our pure-MLX composition, mx.linalg on
   the CPU stream, torch.linalg on cuda and cpu (the rule of
   ``mlx_asv/gpu/timing.py``, shared with ``mlx_asv/gpu/device_models_table.py``: one
   warm-up call, then timed calls until at least ``--min-calls`` calls and
   ``--min-time`` seconds; median and IQR), with each one's accuracy, and
   the issue's goals (QR 500x16x16 >= 100x faster than torch
   cuda and >= 10x faster than mx.linalg on the CPU; Cholesky faster than
   torch cuda) as PASS / FAIL / n/a lines.

Exit status: 0 if every correctness check passed (the speed goals only
report), 1 otherwise. On a machine without a GPU it still runs: the kernel
columns are n/a and the table compares the CPU implementations.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import traceback

import numpy as np

from benchmarks.lib import linalg_kernels as lk
from benchmarks import metal_kernels as mk
from benchmarks.common import mlx, mlx_gpu_kind, torch
from mlx_asv import cli
from mlx_asv.gpu.timing import sample, summarize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TABLE_IMPLS = ("ours_mlx_gpu", "ours_mlx_gpu_composed", "ours_mlx_cpu", "mlx_linalg_cpu", "torch_cuda", "torch_cpu")

# (class, full-size case label) rows of the table: seed 003 shapes.
TABLE_CASES = [
    (mk.QRBatched, "dim=500x16x16"),
    (mk.QRBatched, "dim=1000x16x16"),
    (mk.QRBatched, "dim=500x32x32"),
    (mk.QRBatched, "dim=100x48x48"),
    (mk.QRBatched, "dim=200x64x32"),
    (mk.QRBatched, "dim=100x32x64"),
    (mk.Cholesky, "dim=500x16x16"),
    (mk.Cholesky, "dim=200x48x48"),
    (mk.Cholesky, "dim=100x64x64"),
    (mk.Solve, "dim=500x16x16"),
    (mk.Solve, "dim=200x48x48"),
    (mk.SolveTriangular, "dim=500x16x16"),
    (mk.SolveTriangular, "dim=200x48x48"),
]


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------


def environment():
    mx = mlx()
    t = torch()
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "mlx": getattr(mx, "__version__", None),
        "mlx_gpu_kind": mlx_gpu_kind(),
        "cuda_kernel": lk.kernel_api("cuda") or "available",
        "metal_kernel": lk.kernel_api("metal") or "available",
        "torch": getattr(t, "__version__", None),
        "torch_cuda_device": (t.cuda.get_device_name(0) if t is not None and t.cuda.is_available() else None),
    }
    return env


# ---------------------------------------------------------------------------
# Own correctness checks of the GPU kernels (pytest not needed)
# ---------------------------------------------------------------------------


def _np(x):
    mx = mlx()
    return np.array(x.astype(mx.float32)).astype(np.float64)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def kernel_checks(kind, log):
    """Our ``kind`` kernels against NumPy (float64), the pure-MLX form and torch."""
    mx = mlx()
    t = torch()
    tdev = None
    if t is not None and kind == "cuda" and t.cuda.is_available():
        tdev = "cuda"
    elif t is not None:
        tdev = "cpu"
    gen = np.random.default_rng(5)
    failures = []

    def check(name, value, limit):
        ok = bool(np.isfinite(value) and value <= limit)
        log(f"  {'ok  ' if ok else 'FAIL'} {name}: {value:.2e} (limit {limit:.0e})")
        if not ok:
            failures.append(name)

    mx.set_default_device(mx.gpu)
    qr_shapes = [(1, 1, 1), (3, 5, 3), (3, 3, 5), (7, 8, 8), (5, 16, 16), (4, 17, 9), (3, 32, 32),
                 (2, 48, 48), (3, 64, 32), (3, 32, 64), (2, 64, 64), (500, 16, 16)]
    for shape in qr_shapes:
        a = gen.standard_normal(shape).astype(np.float32)
        if shape[0] > 1 and shape[1] > 2:
            a[-1, :, 0] = 0.0  # a zero column
            a[-1, 2:, 1] = 0.0  # nothing below the diagonal
        q, r = lk.qr(mx.array(a), impl=kind)
        q, r = _np(q), _np(r)
        k = min(shape[1:])
        recon = max(_rel(q[i] @ r[i], a[i]) for i in range(shape[0]))
        orth = mk.qr_orthogonality_error(q)
        check(f"{kind} qr {shape} ||A-QR||/||A||", recon, 1e-5)
        check(f"{kind} qr {shape} ||QtQ-I||_2", orth, 1e-5)
        qm, rm = lk.qr(mx.array(a), impl="mlx")
        check(f"{kind} qr {shape} R vs pure-MLX", np.abs(r - _np(rm)).max() / max(1.0, np.abs(r).max()), 1e-4)
        if tdev is not None:
            rt = t.linalg.qr(t.from_numpy(a).to(tdev))[1].cpu().double().numpy()
            check(f"{kind} qr {shape} R vs torch {tdev}", np.abs(r - rt).max() / max(1.0, np.abs(rt).max()), 1e-4)
    # a non-contiguous input (transposed view)
    a = gen.standard_normal((4, 16, 16)).astype(np.float32)
    q, r = lk.qr(mx.array(a).transpose(0, 2, 1), impl=kind)
    at = a.transpose(0, 2, 1)
    check(f"{kind} qr transposed view", max(_rel(_np(q)[i] @ _np(r)[i], at[i]) for i in range(4)), 1e-5)

    for shape in [(1, 1, 1), (4, 5, 5), (7, 8, 8), (5, 16, 16), (3, 33, 33), (3, 48, 48), (2, 64, 64), (500, 16, 16), (200, 48, 48)]:
        s = mk.spd_matrices(("check", shape), shape[:-2], shape[-1])
        l = _np(lk.cholesky(mx.array(s), impl=kind))
        s64 = s.astype(np.float64)
        err = max(_rel(l[i] @ l[i].T, s64[i]) for i in range(shape[0]))
        check(f"{kind} cholesky {shape} ||LLt-A||/||A||", err, 1e-5)
        check(f"{kind} cholesky {shape} upper triangle zero", float(np.abs(np.triu(l, 1)).max()), 0.0)
        if tdev is not None:
            lt = t.linalg.cholesky(t.from_numpy(s).to(tdev)).cpu().double().numpy()
            check(f"{kind} cholesky {shape} vs torch {tdev}", _rel(l, lt), 1e-5)

    for shape, nrhs in [((1, 1, 1), 1), ((4, 5, 5), 1), ((5, 16, 16), 3), ((3, 33, 33), 2), ((3, 48, 48), 1),
                        ((2, 64, 64), 4), ((500, 16, 16), 1), ((200, 48, 48), 1)]:
        n = shape[-1]
        a = mk.general_matrices(("check", shape), shape[:-2], n)
        b = gen.standard_normal(shape[:-1] + (nrhs,)).astype(np.float32)
        x = _np(lk.solve(mx.array(a), mx.array(b), impl=kind))
        res = mk.solve_residual(a.astype(np.float64), x, b.astype(np.float64))
        check(f"{kind} solve {shape} nrhs={nrhs} ||Ax-b||/||b||", res, 1e-5)
        if tdev is not None:
            xt = t.linalg.solve(t.from_numpy(a).to(tdev), t.from_numpy(b).to(tdev)).cpu().double().numpy()
            check(f"{kind} solve {shape} vs torch {tdev}", _rel(x, xt), 1e-4)
        lo = mk.lower_triangular_matrices(("check", shape), shape[:-2], n)
        for upper in (False, True):
            tri = np.swapaxes(lo, -1, -2).copy() if upper else lo
            x = _np(lk.solve_triangular(mx.array(tri), mx.array(b), upper=upper, impl=kind))
            res = mk.solve_residual(tri.astype(np.float64), x, b.astype(np.float64))
            check(f"{kind} solve_triangular {shape} nrhs={nrhs} upper={upper}", res, 1e-5)
    # a vector right-hand side
    a = mk.general_matrices(("check", "vec"), (3,), 16)
    bv = gen.standard_normal((3, 16)).astype(np.float32)
    x = _np(lk.solve(mx.array(a), mx.array(bv), impl=kind))
    check(f"{kind} solve vector rhs", mk.solve_residual(a.astype(np.float64), x[..., None], bv[..., None].astype(np.float64)), 1e-5)
    return failures


def run_pytest(log):
    try:
        import pytest  # noqa: F401
    except ImportError:
        log("pytest is not installed: skipping tests/test_metal_kernels.py (own checks run below)")
        return None
    cmd = [sys.executable, "-m", "pytest", os.path.join(ROOT, "tests", "test_metal_kernels.py"),
           "-k", "cuda or mirror or config", "-q", "-rs", "-p", "no:cacheprovider"]
    log("$ " + shlex.join(cmd))
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    log(proc.stdout[-6000:] + proc.stderr[-2000:])
    return proc.returncode


# ---------------------------------------------------------------------------
# Timing table
# ---------------------------------------------------------------------------


MIN_CALLS = 30  # timed calls per cell at least (--min-calls)
MIN_TIME = 0.25  # seconds of timed calls per cell at least (--min-time)


def time_call(prep, min_calls=MIN_CALLS, min_time=MIN_TIME):
    """(median, IQR) seconds of ``prep.fn``, a callable that evaluates or
    synchronizes its result (``Backend.timed``), by the rule of mlx_asv/gpu/timing.py.

    The cells before this one may have left the GPU idle for seconds (CPU
    implementations); ``min_time`` keeps the calls going long enough that the
    first ones, on a GPU still clocking up, don't set the median."""
    prep.backend.activate()
    return summarize(sample(prep.fn, min_calls, min_time))


def mlx_floor(min_calls, min_time, log):
    """Median time of a trivial synchronized MLX GPU call (mx.eval(x + 1) on
    a 500x16x16 array): the per-call floor our kernels cannot go below."""
    mx = mlx()
    if mx is None or mlx_gpu_kind() is None:
        return None
    mx.set_default_device(mx.gpu)
    x = mx.zeros((500, 16, 16))
    mx.eval(x)

    class _P:
        backend = mk.backend("mlx_gpu")

        @staticmethod
        def fn():
            mx.eval(x + 1.0)

    t, _ = time_call(_P, min_calls, min_time)
    log(f"MLX per-call floor (mx.eval(x + 1), x 500x16x16 on the GPU): {fmt_time(t)}")
    return t


def accuracy(cls, prep):
    out = prep.result()
    a = prep.inputs[0].astype(np.float64)
    if cls.op == "qr":
        q, r = out
        return {"recon": mk.qr_reconstruction_error(a, q, r), "orth": mk.qr_orthogonality_error(q)}
    if cls.op == "cholesky":
        return {"recon": mk.cholesky_reconstruction_error(a, out)}
    return {"resid": mk.solve_residual(a, out, prep.inputs[1].astype(np.float64))}


def fmt_time(s):
    if s is None:
        return "n/a"
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} us"


def measure(impls, min_calls, min_time, log, cases=None):
    rows = []
    for cls, label in cases or TABLE_CASES:
        row = {"op": cls.op, "case": label, "times": {}, "iqr": {}, "errors": {}, "skipped": {}}
        for impl in impls:
            try:
                prep = cls.prepared(label, impl)
            except NotImplementedError as e:
                row["skipped"][impl] = str(e)
                continue
            except Exception as e:  # a failing implementation is reported, not fatal
                row["skipped"][impl] = f"ERROR {type(e).__name__}: {e}"
                log(f"ERROR {cls.op} {label} {impl}: {traceback.format_exc()}")
                continue
            row["times"][impl], row["iqr"][impl] = time_call(prep, min_calls, min_time)
            row["errors"][impl] = accuracy(cls, prep)
        mlx().set_default_device(mlx().gpu if mlx_gpu_kind() else mlx().cpu)
        rows.append(row)
        log(f"measured {cls.op} {label}: " + ", ".join(
            f"{k}={fmt_time(v)} (IQR {fmt_time(row['iqr'][k])})" for k, v in row["times"].items()))
    return rows


def markdown(rows, impls):
    head = ["op", "case"] + list(impls) + ["ours_gpu vs torch_cuda", "ours_gpu vs mlx_linalg_cpu", "ours_mlx_cpu vs mlx_linalg_cpu", "max error (impl)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        t = row["times"]

        def ratio(a, b):
            return f"{t[b] / t[a]:.1f}x" if a in t and b in t else "n/a"

        errs = []
        for impl, e in row["errors"].items():
            errs.append(f"{max(e.values()):.0e} ({impl})")
        cells = [row["op"], row["case"].replace("dim=", "")]
        cells += [fmt_time(t.get(i)) for i in impls]
        cells += [ratio("ours_mlx_gpu", "torch_cuda"), ratio("ours_mlx_gpu", "mlx_linalg_cpu"), ratio("ours_mlx_cpu", "mlx_linalg_cpu")]
        cells.append("; ".join(errs))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Times: median of synchronized calls (MLX: mx.eval of the result; torch cuda: "
                 "torch.cuda.synchronize; IQRs in the log lines and the JSON). ratio = other / ours (> 1: ours faster). Errors: "
                 "QR max(||A-QR||_F/||A||_F, ||QtQ-I||_2), Cholesky ||LLt-A||/||A||, solves ||Ax-b||/||b||, max over the batch.")
    return "\n".join(lines)


def goals(rows):
    def find(op, label):
        for r in rows:
            if r["op"] == op and r["case"] == label:
                return r["times"]
        return {}

    out = []

    def goal(name, times, a, b, factor):
        if a in times and b in times:
            got = times[b] / times[a]
            out.append(f"{'PASS' if got >= factor else 'FAIL'} {name}: {got:.1f}x (goal >= {factor}x; "
                       f"{a} {fmt_time(times[a])}, {b} {fmt_time(times[b])})")
        else:
            out.append(f"n/a  {name}: needs {a} and {b}")

    qr = find("qr", "dim=500x16x16")
    goal("QR 500x16x16: ours vs torch.linalg.qr cuda", qr, "ours_mlx_gpu", "torch_cuda", 100)
    goal("QR 500x16x16: ours vs mx.linalg.qr cpu", qr, "ours_mlx_gpu", "mlx_linalg_cpu", 10)
    for label in ("dim=500x16x16", "dim=200x48x48", "dim=100x64x64"):
        goal(f"Cholesky {label[4:]}: ours vs torch.linalg.cholesky cuda", find("cholesky", label), "ours_mlx_gpu", "torch_cuda", 1)
    return out


# ---------------------------------------------------------------------------


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("--min-calls", "--repeats", dest="min_calls", type=int, default=MIN_CALLS,
                    help=f"timed calls per cell at least (median, IQR); default {MIN_CALLS}")
    ap.add_argument("--min-time", type=float, default=MIN_TIME,
                    help=f"seconds of timed calls per cell at least; default {MIN_TIME}")
    ap.add_argument("--impls", default=",".join(TABLE_IMPLS), help="comma-separated implementations of the table")
    ap.add_argument("--no-tests", action="store_true", help="skip pytest and the own checks")
    ap.add_argument("--no-table", action="store_true", help="skip the timing table")
    ap.add_argument("--all-cases", action="store_true",
                    help="table rows: every seed case of QRBatched, QRSingle, Cholesky, Solve, SolveTriangular")
    ap.add_argument("--json", help="also write everything to this JSON file")
    ap.add_argument("--show-source", action="store_true", help="print the CUDA source MLX compiles for QR 16x16")
    args = ap.parse_args(argv)

    def log(msg=""):
        print(msg, flush=True)

    report = {"environment": environment()}
    log("## Environment")
    for k, v in report["environment"].items():
        log(f"- {k}: {v}")
    kind = lk.gpu_kernel_kind()
    log(f"- our GPU kernels: {kind or 'none here'}")
    ok = True

    if args.show_source and kind is not None:
        mx = mlx()
        a = mx.random.normal((2, 16, 16))
        mx.eval(lk.qr_kernel(a, kind, verbose=True))

    if not args.no_tests:
        log("\n## Tests")
        rc = run_pytest(log)
        report["pytest_returncode"] = rc
        if rc not in (None, 0, 5):  # 5: nothing collected
            ok = False
        if kind is not None:
            log(f"\n### Own checks of the {kind} kernels")
            failures = kernel_checks(kind, log)
            report["check_failures"] = failures
            ok = ok and not failures
        else:
            log("no GPU kernel API here: own kernel checks skipped")

    if not args.no_table:
        impls = [i.strip() for i in args.impls.split(",") if i.strip()]
        log(f"\n## Timing (one warm-up call, then at least {args.min_calls} calls and {args.min_time:g} s per cell; "
            f"device: {report['environment']['torch_cuda_device'] or 'cpu only'})")
        cases = [(c, case.label) for c in mk.LINALG_CLASSES for case in c.cases] if args.all_cases else None
        report["mlx_floor_s"] = mlx_floor(args.min_calls, args.min_time, log)
        rows = measure(impls, args.min_calls, args.min_time, log, cases)
        table = markdown(rows, impls)
        log("")
        log(table)
        log("")
        for line in goals(rows):
            log(line)
        skipped = {f"{r['op']} {r['case']} {i}": why for r in rows for i, why in r["skipped"].items()}
        if skipped:
            log("\nSkipped cells:")
            seen = set()
            for k, why in skipped.items():
                if why not in seen:
                    log(f"- {k}: {why}")
                    seen.add(why)
        report["rows"] = rows
        report["table"] = table
        report["goals"] = goals(rows)
        if any(why.startswith("ERROR") for why in skipped.values()):
            ok = False
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    log("\nRESULT: " + ("all correctness checks passed" if ok else "SOME CHECKS FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
