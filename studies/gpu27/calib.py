#!/usr/bin/env python3
"""Issue 27, calibration process: every selected device case's raw profiled calls, kernel by kernel.

    python3 -m studies.gpu27.calib --bench REGEX [--cases FILE --backends torch_cuda] --calls 60 --out F.jsonl

One process: each case of benchmarks/device.py whose asv name matches REGEX (and each
``Class<TAB>label`` of FILE on the given backends), ``--calls`` profiled calls after one warm-up
(``device_time.per_call_activities``), one JSON line a case in studies/device_study.py's row format
(``device``: each call's summed device seconds, ``all``: true), plus ``kernels`` (each call's
activity durations in ns, in order) and ``names`` (the first call's activity names), so that
studies/gpu27/estimators.py can compare estimators of a process's value on the same calls.
"""

from __future__ import annotations

import json
import os
import sys
import time

from mlx_asv import cli



def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--cases")
    ap.add_argument("--backends", default="torch_cuda")
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from benchmarks import common, device, ops
    from benchmarks.lib import device_time
    from studies.device_study import read_cases, version

    todo = [(name, label, be) for _, name, label, be in device.selected(args.bench)]
    if args.cases:
        todo += [(n, lb, be) for n, lb in read_cases(args.cases) for be in args.backends.split(",")]
    t0 = time.perf_counter()
    with open(args.out, "a", encoding="utf-8") as f:
        for name, label, be in todo:
            row = {"case": name, "label": label, "backend": be, "mlx": version(), "pid": os.getpid(), "all": True}
            t = time.perf_counter()
            try:
                if common.unavailable_reason(be) is not None:
                    continue
                call = getattr(ops, name).callable(label, be)
                segs = device_time.per_call_activities(call, calls=args.calls)
                row["device"] = [device_time.activity_seconds(s) for s in segs]
                row["kernels"] = [[a[2] for a in s] for s in segs]
                row["names"] = [a[0][:80] for a in segs[0]]
            except NotImplementedError:
                continue
            except Exception as e:  # noqa: BLE001 - recorded, the process goes on
                row["error"] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
            finally:
                call = None
                common.CACHE.clear()
                device._free_device_memory()
            row["cost_s"] = round(time.perf_counter() - t, 4)
            f.write(json.dumps(row) + "\n")
            f.flush()
        f.write(json.dumps({"process_s": time.perf_counter() - t0, "mlx": version(), "pid": os.getpid()}) + "\n")


if __name__ == "__main__":
    main()
