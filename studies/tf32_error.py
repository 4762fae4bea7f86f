#!/usr/bin/env python3
"""How far MLX's GPU float32 results are from float64, with TF32 (MLX's
default) and with ``MLX_ENABLE_TF32=0``: the README's TF32 figures.

Run on the GPU machine, from the repository root::

    python3 -m studies.tf32_error                 # both settings, matmul and bert-base
    python3 -m studies.tf32_error --no-model      # the matmul only (seconds)
    python3 -m studies.tf32_error --json tf32.json

MLX reads ``MLX_ENABLE_TF32`` once, at its first matmul, so each setting is
measured in a process of its own (this script started again with
``--child``): once with the variable unset (MLX's default: TF32), once with
``MLX_ENABLE_TF32=0``. Each process computes, with the very callables the
benchmarks time (``Backend.timed``: evaluated / synchronized):

- a 1024x1024 float32 matmul (seeded inputs from ``benchmarks.common.normal``)
  on ``mlx_gpu`` and, where it runs, ``torch_cuda`` (torch at its defaults:
  ``allow_tf32`` off), against NumPy's float64 product of the same inputs:
  the relative error ``||C - C64||_F / ||C64||_F``, and the max abs error
  over the largest ``|C64|`` (the measure of the GPU parity tests);
- bert-base-uncased at full size, 200 characters x 16
  (``models.forward_callable``, as ``test_gpu_parity_full_size``): the max abs
  difference of the last hidden state on ``mlx_gpu`` (and ``torch_cuda``)
  from torch on the CPU.

Prints a Markdown table. Where MLX has no GPU backend it stops at once with one
line and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from benchmarks import common
from mlx_asv import cli

# the --child processes run as ``python -m studies.tf32_error`` from here (a GPU host's python lacks the package)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TF32_ENV = "MLX_ENABLE_TF32"
SIZE = 1024
MODEL, LENGTH, BATCH = "bert-base-uncased", 200, 16
SETTINGS = (("MLX default (TF32)", None), (f"{TF32_ENV}=0", "0"))


def no_gpu_reason():
    """None where MLX has a GPU backend here, else the one line to stop with."""
    reason = common.unavailable_reason("mlx_gpu")
    if reason is None:
        return None
    return f"tf32_error: needs MLX's GPU backend (mlx_gpu: {reason}); run it on the GPU machine"


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def matmul_errors(be_name):
    """{'rel_fro', 'max_abs_rel'} of a SIZE x SIZE float32 product on ``be_name``."""
    a = common.normal(("tf32_error", "a"), (SIZE, SIZE))
    b = common.normal(("tf32_error", "b"), (SIZE, SIZE))
    want = a.astype(np.float64) @ b.astype(np.float64)
    be = common.backend(be_name)
    if be.is_mlx:
        fn = common.mlx().matmul
    else:
        fn = common.torch().matmul
    got = be.to_numpy(be.timed(fn, *be.arrays([a, b]))()).astype(np.float64)
    return {
        "rel_fro": float(np.linalg.norm(got - want) / np.linalg.norm(want)),
        "max_abs_rel": float(np.abs(got - want).max() / np.abs(want).max()),
    }


def model_error(be_name, reference):
    """Max abs difference of bert-base's last hidden state on ``be_name`` from ``reference``."""
    from benchmarks import models

    got = common.Backend(be_name).to_numpy(models.forward_callable(MODEL, LENGTH, BATCH, be_name)())
    return float(np.abs(np.asarray(got, np.float64) - reference).max())


def child(with_model, backends=("mlx_gpu", "torch_cuda")):
    """One setting's figures (this process's MLX_ENABLE_TF32), as a dict."""
    mx = common.mlx()
    out = {"mlx": mx.__version__, "mlx_gpu_kind": common.mlx_gpu_kind(),
           "MLX_ENABLE_TF32": os.environ.get(TF32_ENV), "matmul": {}, "model": {}}
    for be_name in backends:
        reason = common.unavailable_reason(be_name)
        try:
            out["matmul"][be_name] = {"skipped": reason} if reason else matmul_errors(be_name)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            out["matmul"][be_name] = {"failed": _one_line(exc)}
    if with_model:
        try:
            from benchmarks import models

            reference = np.asarray(common.Backend("torch_cpu").to_numpy(
                models.forward_callable(MODEL, LENGTH, BATCH, "torch_cpu")()), np.float64)
        except Exception as exc:  # noqa: BLE001 - no torch / transformers: n/a
            out["model"] = {b: {"failed": f"torch_cpu reference: {_one_line(exc)}"} for b in backends}
        else:
            for be_name in backends:
                reason = common.unavailable_reason(be_name)
                try:
                    out["model"][be_name] = ({"skipped": reason} if reason
                                             else {"max_abs": model_error(be_name, reference)})
                except Exception as exc:  # noqa: BLE001
                    out["model"][be_name] = {"failed": _one_line(exc)}
                common.CACHE.clear()
    return out


def run_setting(value, with_model):
    env = dict(os.environ)
    env.pop(TF32_ENV, None)
    if value is not None:
        env[TF32_ENV] = value
    cmd = [sys.executable, "-m", "studies.tf32_error", "--child"] + ([] if with_model else ["--no-model"])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"tf32_error: the {TF32_ENV}={value or 'unset'} process failed "
                         f"(exit {proc.returncode}): {tail}")
    return json.loads(lines[-1])


def _cell(entry, key):
    if "skipped" in entry:
        return "n/a"
    if "failed" in entry:
        return "failed"
    return f"{entry[key]:.1e}"


def table(results):
    head = ["setting", "mlx_gpu matmul rel. error (max abs)", "torch_cuda matmul rel. error (max abs)",
            f"{MODEL} max abs diff, mlx_gpu", f"{MODEL} max abs diff, torch_cuda"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = {}
    for label, r in results:
        cells = [label]
        for be in ("mlx_gpu", "torch_cuda"):
            e = r["matmul"][be]
            cells.append(f"{_cell(e, 'rel_fro')} ({_cell(e, 'max_abs_rel')})" if "rel_fro" in e else _cell(e, ""))
        for be in ("mlx_gpu", "torch_cuda"):
            e = r["model"].get(be)
            cells.append("not run (--no-model)" if e is None else _cell(e, "max_abs"))
        for part in ("matmul", "model"):
            for be, e in r[part].items():
                why = e.get("skipped") or e.get("failed")
                if why:
                    notes[f"{be} ({part})"] = why
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"matmul: {SIZE}x{SIZE} float32 against NumPy float64, ||C - C64||_F / ||C64||_F "
                 f"(in brackets: max |C - C64| / max |C64|). {MODEL}: {LENGTH} characters x {BATCH}, "
                 f"last hidden state against torch on the CPU, max abs.")
    for k, why in notes.items():
        lines.append(f"{k}: {why}")
    return "\n".join(lines)


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("--no-model", action="store_true", help=f"skip {MODEL} (the matmul only)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # the script measures mlx_gpu and torch_cuda whatever the benchmarks' selection
    os.environ.pop(common.SELECTED_ENV, None)
    reason = no_gpu_reason()
    if reason is not None:
        print(reason, file=sys.stderr)
        return 1
    if args.child:
        print(json.dumps(child(not args.no_model)))
        return 0
    results = [(label, run_setting(value, not args.no_model)) for label, value in SETTINGS]
    first = results[0][1]
    print(f"MLX {first['mlx']} (GPU backend: {first['mlx_gpu_kind']}); torch "
          f"{getattr(common.torch(), '__version__', 'not installed')}")
    print(table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([{"setting": label, **r} for label, r in results], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
