#!/usr/bin/env python3
"""Issue 25: what would counting the CPU cases of models.py, fused_ops.py and
metal_kernels.py cost?

For each case named, one callgrind process (``--instr-atstart=no``, as the
counting path runs) builds the callable asv times, calls it once more
uninstrumented, then counts one call; printed per case: the seconds of the
build (imports, inputs, weights, first call), of the uncounted call, of the
counted call, and its instructions. With ``--native`` the same steps run
without valgrind, for the slowdown.

    python -m studies.count_cost [--native] CASE [CASE ...]

CASE is ``models:MODEL:LENGTH:BATCH``, ``fused_ops:CLASS:LABEL`` or
``metal_kernels:CLASS:LABEL:IMPLEMENTATION`` (all on the CPU: models and
fused_ops on mlx_cpu). Run with a python that has MLX, torch and transformers
(models build their weights with transformers), e.g. ``.venv/bin/python``,
from the repository root. Measured: docs/work-verdicts.md ("What the other
families would cost").
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.lib import callgrind, counting


def callable_of(case):
    """The zero-argument callable asv times for CASE (see the docstring)."""
    module, *rest = case.split(":")
    if module == "models":
        from benchmarks import models

        name, length, batch = rest
        return models.forward_callable(name, int(length), int(batch), "mlx_cpu")
    if module == "fused_ops":
        from benchmarks import fused_ops

        cls, label = rest
        return getattr(fused_ops, cls).callable(label, "mlx_cpu")
    if module == "metal_kernels":
        from benchmarks import metal_kernels

        cls, label, impl = rest
        return getattr(metal_kernels, cls).callable(label, impl)
    raise SystemExit(f"count_cost: unknown case {case!r} (models:..., fused_ops:..., metal_kernels:...)")


def child(case, marks_path=None):
    """One case's phases, as a JSON line; under valgrind the third step is counted."""
    marks = ctypes.CDLL(marks_path) if marks_path else None
    if marks:
        marks.dump.argtypes = [ctypes.c_char_p]
    t0 = time.perf_counter()
    fn = callable_of(case)
    t1 = time.perf_counter()
    fn()
    t2 = time.perf_counter()
    if marks:
        marks.start()
    fn()
    if marks:
        marks.dump(b"case#0")
        marks.stop()
    t3 = time.perf_counter()
    print(json.dumps({"case": case, "build": round(t1 - t0, 3), "second": round(t2 - t1, 3),
                      "counted": round(t3 - t2, 3)}), flush=True)
    return 0


def run(case, native=False):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    me = [sys.executable, "-m", "studies.count_cost", "--child", case]
    with tempfile.TemporaryDirectory() as folder:
        if native:
            cmd = me
        else:
            cmd = [*counting.no_aslr_prefix(), *counting.VALGRIND, f"--callgrind-out-file={folder}/callgrind.%p",
                   f"--log-file={folder}/valgrind.log", *me, counting.marks_library()]
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=counting.PACKAGE_PARENT)
        took = time.time() - t0
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-1]
            return {"case": case, "error": tail}
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["process"] = round(took, 1)
        dumps = [n for n in os.listdir(folder) if n.startswith("callgrind.") and n.count(".") == 2]
        if dumps:
            row["instructions"] = callgrind.read(os.path.join(folder, dumps[0]))["total"]
        return row


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[2] if len(argv) > 2 else None)
    from mlx_asv import cli

    p = cli.parser(__doc__)
    p.add_argument("--native", action="store_true", help="run the steps without valgrind")
    p.add_argument("cases", nargs="+")
    args = p.parse_args(argv)
    if not args.native:
        counting.check_tools()
    for case in args.cases:
        print(json.dumps(run(case, args.native)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
