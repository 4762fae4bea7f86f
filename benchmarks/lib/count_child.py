#!/usr/bin/env python3
"""The counting process (benchmarks/lib/counting.py) that runs under valgrind,
in the environment whose MLX is counted:

    valgrind --tool=callgrind --instr-atstart=no ... python benchmarks/lib/count_child.py CASES CALLS MARKS

For each case of CASES (a JSON list of [key, family, label, backend]) it
builds the callable asv times (``CaseTable.callable`` of benchmarks/ops.py,
which calls it once), calls it a second time uninstrumented, then CALLS times between the
marks library's start() and stop(name) (benchmarks/lib/native/callgrind_marks.c),
which make callgrind count every thread's instructions of that call and
write them as a dump named ``<key>#<call>``. One JSON line per case on
stdout: done, skipped (the release lacks the op) or its error; the other
cases go on. It imports nothing but the benchmarks (found through the
PYTHONPATH counting.launch sets), and so neither torch nor anything else an
MLX case does not use: under valgrind, importing torch alone took 24 s here
(``valgrind --tool=callgrind --instr-atstart=no .venv/bin/python -c "import torch"``).
"""

import ctypes
import json
import sys
import time


def count(cases_path, calls, marks_path, out=sys.stdout):
    from benchmarks import ops

    marks = ctypes.CDLL(marks_path)
    marks.stop.argtypes = [ctypes.c_char_p]
    if not marks.on_valgrind():
        print(json.dumps({"error": "not running under valgrind"}), file=out, flush=True)
        return 1
    with open(cases_path, encoding="utf-8") as f:
        todo = json.load(f)
    for key, family, label, backend in todo:
        t0 = time.perf_counter()
        phases = {}
        try:
            # Building it called it once (ops.OpFamily.build, Compile.build,
            # Backend.timed); its second call still does one-time work (MLX
            # 0.32.4, ReLU 128x16x1024: 5.93 M instructions, then 5.81 M on
            # every later call: the first call's leftovers released, caches
            # filled), so the counted call is the third, the steady state
            # that asv's fastest sample times. It costs a fifth of a counting
            # process's time (65 of 334 s for the main job's 65 cases).
            fn = getattr(ops, family).callable(label, backend)
            t1 = time.perf_counter()
            fn()
            t2 = time.perf_counter()
            for k in range(calls):
                marks.start()
                fn()
                marks.stop(f"{key}#{k}".encode())
            # Where valgrind's time goes: building the case (its inputs and
            # first call), the second call, the counted calls.
            phases = {"build": round(t1 - t0, 3), "second": round(t2 - t1, 3),
                      "counted": round(time.perf_counter() - t2, 3)}
        except NotImplementedError as e:
            print(json.dumps({"key": key, "skip": str(e) or "not in this release"}), file=out, flush=True)
            continue
        except Exception as e:  # noqa: BLE001 - this case's failure, reported; the others go on
            print(json.dumps({"key": key, "error": f"{type(e).__name__}: {e}"}), file=out, flush=True)
            continue
        print(json.dumps({"key": key, "done": calls, "seconds": round(time.perf_counter() - t0, 3),
                          **phases}),
              file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(count(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
