#!/usr/bin/env python3
"""The counting process (benchmarks/lib/counting.py) that runs under valgrind,
in the environment whose MLX is counted:

    valgrind --tool=callgrind --instr-atstart=no ... python benchmarks/lib/count_child.py CASES CALLS MARKS

CASES is a JSON list of [key, family, label, backend], written into the
folder where callgrind writes its dumps; a family is ops.py's class name
(``ReLU``) or one qualified by its module (``fused_ops.RMSNorm``,
``metal_kernels.Cholesky``, whose "backend" is its implementation:
``ours_mlx_cpu``, ``mlx_linalg_cpu``). For each case it builds the callable
asv times (``callable(label, backend)`` of the family's class in its module
of benchmarks/, which calls it once),
then counts calls between the marks library's requests
(benchmarks/lib/native/callgrind_marks.c), which make callgrind count every
thread's instructions of one call and write them as a dump named after the
case. Which calls count (``STEADY_INSTRUCTIONS`` says why):

- the second call, dumped as ``<key>#2nd``; if it executed at least
  ``STEADY_INSTRUCTIONS``, it is the first counted call (``second_counted``
  in the case's line) and CALLS - 1 more follow, dumped as ``<key>#1`` ...;
- otherwise CALLS more, from the third call on, dumped as ``<key>#0`` ...

One JSON line per case on stdout: done, skipped (the release lacks the op) or
its error; the other cases go on. It imports nothing but the benchmark
modules its cases are in (found through the PYTHONPATH counting.launch sets), and so neither torch nor
anything else an MLX case does not use: under valgrind, importing torch alone
took 24 s here (``valgrind --tool=callgrind --instr-atstart=no .venv/bin/python
-c "import torch"``).
"""

import ctypes
import importlib
import json
import os
import sys
import time

# The second call of a case still does one-time work: 124 k instructions more
# than the third for the first compiled op of a process (ReLU 128x16x1024,
# MLX 0.32.4, first in its process: 5.93 M on the 2nd call, 5.81 M on every
# later one), and up to 2.1% for the small ops.Compile cases. For a call of
# 100 M instructions or more that is at most 0.12%, and measured on the main
# job's 65 mlx_cpu cases on MLX 0.32.3 and 0.32.4 (calls 2 and 3 counted in one
# process, studies/second_call.py) the 2nd and 3rd calls of every case of 10 M
# or more differ by at most 0.015%: far below the 1% a work verdict needs. So
# such a call is counted on its second call, saving the uncounted one (a sixth
# of a counting process's time, most of it in the largest cases); smaller ones
# on their third, the steady state that asv's fastest sample times.
STEADY_INSTRUCTIONS = 100_000_000


def dump_total(folder, pid, number):
    """The ``totals:`` line of this process's ``number``-th dump, or None.

    Only its last bytes are read: this runs instrumented, before the next
    call's counters are zeroed. callgrind 3.19's totals can hold one thread's
    share, or wrap below zero (benchmarks/lib/callgrind.py), never more than
    the call's work otherwise: a share is low, so the case is counted on its
    third call, and a wrapped value (2**63 or more) is read as unknown."""
    path = os.path.join(folder, f"callgrind.{pid}.{number}")
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 256))
            tail = f.read().decode("ascii", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if line.startswith("totals:"):
            try:
                value = int(line.split()[1])
            except (IndexError, ValueError):
                return None
            return value if value < 2 ** 63 else None
    return None


def family_class(family):
    """The class of a case's family: ``ReLU`` is ops.py's, ``fused_ops.RMSNorm``
    fused_ops.py's (counting.family_name); its module imported on first use."""
    module, _, name = family.rpartition(".")
    return getattr(importlib.import_module(f"benchmarks.{module or 'ops'}"), name)


def count(cases_path, calls, marks_path, out=sys.stdout):
    marks = ctypes.CDLL(marks_path)
    marks.dump.argtypes = [ctypes.c_char_p]
    if not marks.on_valgrind():
        print(json.dumps({"error": "not running under valgrind"}), file=out, flush=True)
        return 1
    folder, pid, dumps = os.path.dirname(os.path.abspath(cases_path)), os.getpid(), 0
    with open(cases_path, encoding="utf-8") as f:
        todo = json.load(f)
    for key, family, label, backend in todo:
        t0 = time.perf_counter()
        try:
            # Building it called it once (ops.OpFamily.build, Compile.build,
            # fused_ops' _warm, metal_kernels' LinalgTable.prepared): the next
            # call is the second.
            fn = family_class(family).callable(label, backend)
            t1 = time.perf_counter()
            marks.start()
            try:
                fn()
                marks.dump(f"{key}#2nd".encode())
                dumps += 1
                second = dump_total(folder, pid, dumps)
                taken = second is not None and second >= STEADY_INSTRUCTIONS
                for k in range(1 if taken else 0, calls):
                    marks.zero()  # the dump's reading above is not the call's work
                    fn()
                    marks.dump(f"{key}#{k}".encode())
                    dumps += 1
            finally:
                marks.stop()
            # Where valgrind's time goes: building the case (its inputs and
            # first call), the counted calls.
            phases = {"build": round(t1 - t0, 3), "counted": round(time.perf_counter() - t1, 3)}
        except NotImplementedError as e:
            print(json.dumps({"key": key, "skip": str(e) or "not in this release"}), file=out, flush=True)
            continue
        except Exception as e:  # noqa: BLE001 - this case's failure, reported; the others go on
            print(json.dumps({"key": key, "error": f"{type(e).__name__}: {e}"}), file=out, flush=True)
            continue
        print(json.dumps({"key": key, "done": calls, "second_counted": taken, "second": second,
                          "seconds": round(time.perf_counter() - t0, 3), **phases}),
              file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(count(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
