#!/usr/bin/env python3
"""Time the transformer inference cases of ``benchmarks/models.py`` without asv.

For a GPU machine that has MLX's CUDA build, a CUDA torch, transformers and
numpy, but no asv. From the repository root::

    python3.12 -m mlx_asv.gpu.device_models_table          # 48 cases, mlx_gpu + torch_cuda
    python3.12 -m mlx_asv.gpu.device_models_table --json models.json
    python3.12 -m mlx_asv.gpu.device_models_table --models bert-large-uncased --lengths 500 --batches 32
    python3.12 -m mlx_asv.gpu.device_models_table --backends mlx_cpu,torch_cpu \\
        --models bert-base-uncased --lengths 50 --batches 1  # CPU-only machine

What is timed is what asv times: each case goes through
``models.Inference.setup`` (which builds the model once per process through
the module-level cache, converts it for MLX, warms it up, tokenizes the
case's input and makes ``Backend.timed``'s callable: ``mx.eval`` /
``torch.cuda.synchronize`` inside the call), and each sample is one call of
``Inference.time_forward`` (asv's ``number = 1``).

Per case, the rule of ``mlx_asv/gpu/timing.py`` (shared with
``mlx_asv/gpu/device_kernels_check.py``): one warm-up call (after the build-time
warm-up ``models.build`` does), then timed calls until at least
``--min-calls`` calls and ``--min-time`` seconds, at most ``--max-calls``
calls, and no new call once ``--max-time`` seconds have passed (a slow case
keeps at least one call). Reported: the median and the interquartile range in
ms. ``--budget`` (default 540 s) bounds the
whole run: cases not begun by then are reported as skipped, so that the table
comes out inside a 10-minute command limit.

Cases run model by model; within a model, backend by backend, so each model
is built once per backend and freed (cache cleared, ``torch.cuda.empty_cache``,
``mx.clear_cache``) before the next one. A backend that cannot run here is
reported as skipped with its reason; an exception in one case is printed as
FAILED with a one-line reason and the run goes on. Exit status: 0 unless a
case FAILED.

Output: the MLX / torch / transformers versions and the GPU, a progress line
per case, then a Markdown table (model, characters, batch, tokens per
sequence and non-padding tokens from ``models.Tokens``, each backend's median
and IQR, and the ratio torch/mlx of the first torch and first MLX backend).
``--json PATH`` also writes every sample.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time

from benchmarks import common, models
from benchmarks.common import mlx, mlx_gpu_kind, torch, unavailable_reason
from mlx_asv import cli
from mlx_asv.gpu.timing import sample, summarize

DEFAULT_BACKENDS = ("mlx_gpu", "torch_cuda")

# The (model, backend) group holds 1 model + up to 12 forward callables in the
# cache; common.CACHE's default bound (4, for asv's one-case processes) would
# evict the model and rebuild it in the middle of a group.
CACHE_ENTRIES = 64


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------


def environment():
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "mlx": None,
        "mlx_gpu_kind": None,
        "mlx_device": None,
        "torch": None,
        "torch_cuda": None,
        "gpu": None,
        "transformers": None,
        # MLX's GPU matmul precision: TF32 unless MLX_ENABLE_TF32=0 (README).
        "mlx_enable_tf32": os.environ.get("MLX_ENABLE_TF32", "unset (MLX's default: TF32 on)"),
    }
    mx = mlx()
    if mx is not None:
        env["mlx"] = mx.__version__
        env["mlx_gpu_kind"] = mlx_gpu_kind()
        try:
            info = mx.device_info() if hasattr(mx, "device_info") else mx.metal.device_info()
            env["mlx_device"] = info.get("device_name") or info.get("architecture")
        except Exception:  # noqa: BLE001 - informational only
            pass
    t = torch()
    if t is not None:
        env["torch"] = t.__version__
        env["torch_cuda"] = getattr(t.version, "cuda", None)
        try:
            if t.cuda.is_available():
                env["gpu"] = t.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            pass
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    return env


def print_environment(env, out):
    print(f"python {env['python']} on {env['machine']} ({env['processor']})", file=out)
    print(
        f"MLX {env['mlx'] or 'not installed'}"
        f" (GPU backend: {env['mlx_gpu_kind'] or 'none'}; device: {env['mlx_device'] or '?'};"
        f" MLX_ENABLE_TF32 {env['mlx_enable_tf32']})",
        file=out,
    )
    print(
        f"torch {env['torch'] or 'not installed'} (CUDA {env['torch_cuda'] or 'none'})"
        f", transformers {env['transformers'] or 'not installed'}",
        file=out,
    )
    print(f"GPU: {env['gpu'] or 'none visible to torch'}", file=out)


# ---------------------------------------------------------------------------
# Failures and memory (the timing rule is mlx_asv/gpu/timing.py)
# ---------------------------------------------------------------------------


def one_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]


def free_memory():
    """Drop the cached models and callables, and give their memory back."""
    common.CACHE.clear()
    gc.collect()
    t = torch()
    if t is not None:
        try:
            if t.cuda.is_available():
                t.cuda.synchronize()
                t.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass
    mx = mlx()
    if mx is not None:
        clear = getattr(mx, "clear_cache", None) or getattr(getattr(mx, "metal", None), "clear_cache", None)
        if clear is not None:
            try:
                clear()
            except Exception:  # noqa: BLE001
                pass


# ---------------------------------------------------------------------------
# Running the cases
# ---------------------------------------------------------------------------


def _parse_list(text, convert, allowed, what):
    values = [convert(v.strip()) for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {bad}; choose from {list(allowed)}")
    return values


def parse_args(argv):
    p = cli.parser(__doc__, wrap=True)
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                   help=f"comma-separated, of {', '.join(models.MODEL_BACKENDS)} (default: %(default)s)")
    p.add_argument("--models", default=",".join(models.MODELS), help="comma-separated (default: all 4)")
    p.add_argument("--lengths", default=",".join(map(str, models.LENGTHS)), help="characters (default: %(default)s)")
    p.add_argument("--batches", default=",".join(map(str, models.BATCHES)), help="(default: %(default)s)")
    p.add_argument("--min-calls", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds of samples at least (default: %(default)s)")
    p.add_argument("--max-calls", type=int, default=50)
    p.add_argument("--max-time", type=float, default=3.0,
                   help="no new sample after this many seconds (default: %(default)s)")
    p.add_argument("--budget", type=float, default=540.0,
                   help="seconds for the whole run: cases not begun by then are reported as skipped "
                        "(default: %(default)s, inside a 10-minute command limit; 0: none)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here (rewritten after each case)")
    args = p.parse_args(argv)
    args.backends = _parse_list(args.backends, str, models.MODEL_BACKENDS, "backend")
    args.models = _parse_list(args.models, str, models.MODELS, "model")
    args.lengths = _parse_list(args.lengths, int, models.LENGTHS, "length")
    args.batches = _parse_list(args.batches, int, models.BATCHES, "batch")
    return args


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def run(args, out=sys.stdout):
    """Measure the selected cases; returns the results dict (also the JSON)."""
    t_start = time.perf_counter()
    env = environment()
    print_environment(env, out)
    skipped = {b: unavailable_reason(b) for b in args.backends}
    skipped = {b: r for b, r in skipped.items() if r is not None}
    for b, reason in skipped.items():
        print(f"SKIPPED backend {b}: {reason}", file=out)
    runnable = [b for b in args.backends if b not in skipped]
    cases = [(m, n, b) for m in args.models for n in args.lengths for b in args.batches]
    print(f"{len(cases)} cases x {len(runnable)} backends ({', '.join(runnable) or 'none'})", file=out)
    out.flush()

    tokens = {}
    tracker = models.Tokens()
    for m, n, b in cases:
        try:
            tokens[m, n, b] = (tracker.track_tokens(m, n, b), tracker.track_real_tokens(m, n, b))
        except Exception as exc:  # noqa: BLE001
            tokens[m, n, b] = (None, None)
            print(f"tokens of {m}/{n}/{b}: {one_line(exc)}", file=out)

    results = []
    builds = []
    data = {
        "environment": env,
        "backends": list(args.backends),
        "skipped_backends": skipped,
        "sampling": {"warmup_calls": 1, "min_calls": args.min_calls, "min_time_s": args.min_time,
                     "max_calls": args.max_calls, "max_time_s": args.max_time, "budget_s": args.budget},
        "cases": [{"model": m, "length": n, "batch": b, "tokens": tokens[m, n, b][0],
                   "real_tokens": tokens[m, n, b][1]} for m, n, b in cases],
        "builds": builds,
        "results": results,
        "complete": False,
        "total_seconds": None,
    }

    budget_reason = f"over --budget {args.budget:g} s"

    def over_budget():
        return args.budget > 0 and time.perf_counter() - t_start > args.budget

    old_bound = common.CACHE.max_entries
    common.CACHE.max_entries = max(old_bound, CACHE_ENTRIES)
    try:
        for name in args.models:
            for be in runnable:
                free_memory()
                # The model, through the cache Inference.setup will use: one
                # build per (model, backend). A failed build, or a budget spent
                # before it, settles all the model's cases at once.
                build_error = None
                if over_budget():
                    build_error = ("skipped", budget_reason)
                    print(f"skipped  {name} on {be}: {budget_reason}", file=out)
                else:
                    t0 = time.perf_counter()
                    try:
                        built = models.model(name, be)
                        source = built.source
                        del built
                    except NotImplementedError as exc:
                        build_error = ("skipped", one_line(exc))
                    except Exception as exc:  # noqa: BLE001
                        build_error = ("FAILED", one_line(exc))
                    build_s = time.perf_counter() - t0
                    builds.append({"model": name, "backend": be, "seconds": build_s,
                                   "status": build_error[0] if build_error else "ok",
                                   "source": None if build_error else source})
                    if build_error:
                        print(f"{build_error[0]} build {name} on {be}: {build_error[1]}", file=out)
                    else:
                        print(f"built {name} on {be} in {build_s:.1f} s ({source})", file=out)
                out.flush()
                for m, n, b in cases:
                    if m != name:
                        continue
                    row = {"model": m, "length": n, "batch": b, "backend": be,
                           "tokens": tokens[m, n, b][0], "real_tokens": tokens[m, n, b][1]}
                    error = build_error
                    if error is None and over_budget():
                        error = ("skipped", budget_reason)
                        print(f"skipped  {m}/{n}/{b} on {be}: {budget_reason}", file=out)
                    if error:
                        row.update(status=error[0], reason=error[1])
                        results.append(row)
                        continue
                    t0 = time.perf_counter()
                    try:
                        bench = models.Inference()
                        bench.setup(m, n, b, be)

                        def call(bench=bench, params=(m, n, b, be)):
                            bench.time_forward(*params)

                        times = sample(call, args.min_calls, args.min_time, args.max_calls, args.max_time)
                    except NotImplementedError as exc:
                        row.update(status="skipped", reason=one_line(exc))
                        print(f"skipped  {m}/{n}/{b} on {be}: {row['reason']}", file=out)
                    except Exception as exc:  # noqa: BLE001
                        row.update(status="FAILED", reason=one_line(exc))
                        print(f"FAILED   {m}/{n}/{b} on {be}: {row['reason']}", file=out)
                    else:
                        median, iqr = summarize([t * 1e3 for t in times])
                        row.update(status="ok", median_ms=median, iqr_ms=iqr, calls=len(times),
                                   times_ms=[t * 1e3 for t in times])
                        print(f"ok       {m}/{n}/{b} on {be}: {median:.3f} ms (IQR {iqr:.3f}, "
                              f"{len(times)} calls, {time.perf_counter() - t0:.1f} s)", file=out)
                    out.flush()
                    results.append(row)
                    if args.json:
                        _write_json(args.json, data)
        free_memory()
    finally:
        common.CACHE.max_entries = old_bound
    total_s = time.perf_counter() - t_start
    print(f"total {total_s:.1f} s", file=out)
    data.update(complete=True, total_seconds=total_s)
    return data


def _cell(row):
    if row is None:
        return "n/a", ""
    if row["status"] != "ok":
        return row["status"], ""
    return f"{row['median_ms']:.3f}", f"{row['iqr_ms']:.3f}"


def table(data):
    """The Markdown table of ``run``'s results."""
    backends = data["backends"]
    by = {(r["model"], r["length"], r["batch"], r["backend"]): r for r in data["results"]}
    runnable = [b for b in backends if b not in data["skipped_backends"]]
    mlx_be = next((b for b in runnable if b.startswith("mlx")), None)
    torch_be = next((b for b in runnable if b.startswith("torch")), None)
    header = ["model", "chars", "batch", "tokens/seq", "real tokens"]
    for b in backends:
        header += [f"{b} ms", f"{b} IQR ms"]
    ratio = mlx_be is not None and torch_be is not None
    if ratio:
        header.append(f"{torch_be}/{mlx_be}")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    tok = {(c["model"], c["length"], c["batch"]): (c["tokens"], c["real_tokens"]) for c in data["cases"]}
    for k in tok:
        cells = [k[0], str(k[1]), str(k[2])] + ["" if v is None else str(v) for v in tok[k]]
        for b in backends:
            if b in data["skipped_backends"]:
                cells += ["skipped", ""]
            else:
                cells += list(_cell(by.get(k + (b,))))
        if ratio:
            a, t = by.get(k + (mlx_be,)), by.get(k + (torch_be,))
            if a and t and a["status"] == t["status"] == "ok" and a["median_ms"] > 0:
                cells.append(f"{t['median_ms'] / a['median_ms']:.2f}")
            else:
                cells.append("n/a")
        lines.append("| " + " | ".join(cells) + " |")
    for b, reason in data["skipped_backends"].items():
        lines.append("")
        lines.append(f"{b}: skipped ({reason})")
    return "\n".join(lines)


def main(argv=None, out=None):
    out = out or sys.stdout
    args = parse_args(argv)
    data = run(args, out)
    print("", file=out)
    print(table(data), file=out)
    if args.json:
        _write_json(args.json, data)
        print(f"\nwrote {args.json}", file=out)
    failed = [r for r in data["results"] if r["status"] == "FAILED"]
    if failed:
        print(f"\n{len(failed)} case(s) FAILED", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
