#!/usr/bin/env python3
"""Study (issue 27): how steady each GPU measure of ops.py's callables is between processes, and its cost.

Three measures of the very callables asv times (``ops.Class.callable``):

- ``wall``: host seconds of one call (op, evaluation, synchronisation), the
  rule of mlx_asv/gpu/timing.py (one warm-up call, then timed calls);
- ``device``: summed device seconds of the call's kernels, copies and memsets
  (``benchmarks/lib/device_time.py``, CUPTI activity records via torch's profiler);
- ``ncu``: executed instructions (``smsp__inst_executed.sum``) and DRAM bytes
  read and written per call, from Nsight Compute run with ``--clock-control none``.

    python3 -m studies.device_study measure --cases FILE --backends mlx_gpu,torch_cuda --out F.jsonl
        one process: every case's wall and device samples, one JSON line a (case, backend)
    python3 -m studies.device_study ncu-child --cases FILE --backends mlx_gpu --calls 3 --out SEQ.json
        run under ``ncu --profile-from-start off --csv --page raw --metrics ...``: each case's calls
        between profiler start and stop, each call preceded by the marker kernel; SEQ.json says which
    python3 -m studies.device_study ncu-parse SEQ.json NCU.csv        per call: instructions, bytes
    python3 -m studies.device_study summary DIR                        the spreads, side by side

``--cases FILE``: one case a line, ``Class<TAB>label``. Spread between
processes: the standard deviation of the log of each process's value (its
fastest wall sample; its median device time; its instructions).
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import statistics
import sys
import time

from mlx_asv import cli

NCU_METRICS = ("smsp__inst_executed.sum", "dram__bytes_read.sum", "dram__bytes_write.sum", "gpu__time_duration.sum")


def read_cases(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, label = line.rstrip("\n").split("\t")
                out.append((name, label))
    return out


def version():
    try:
        import mlx.core as mx
        return mx.__version__
    except ImportError:
        return None


def measure(cases, backends, out, calls, min_calls, min_time, all_bench=None):
    from benchmarks import common, device, ops
    from benchmarks.lib import device_time
    from mlx_asv.gpu.timing import sample

    with open(out, "a", encoding="utf-8") as f:
        t0 = time.perf_counter()
        for name, label in cases:
            for be in backends:
                row = {"case": name, "label": label, "backend": be, "mlx": version(), "pid": os.getpid()}
                try:
                    t = time.perf_counter()
                    call = getattr(ops, name).callable(label, be)
                    row["build_s"] = time.perf_counter() - t
                    t = time.perf_counter()
                    row["wall"] = sample(call, min_calls=min_calls, min_time=min_time, max_time=5)
                    row["wall_cost_s"] = time.perf_counter() - t
                    t = time.perf_counter()
                    row["device"] = device_time.per_call_seconds(call, calls=calls)
                    row["device_cost_s"] = time.perf_counter() - t
                except Exception as e:  # noqa: BLE001 - recorded, the study goes on
                    row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                common.CACHE.clear()
                f.write(json.dumps(row) + "\n")
                f.flush()
        if all_bench:
            # every case benchmarks/device.py's one measuring process (setup_cache) would measure for
            # this regex, by its own function: one row a case, "all": true
            t = time.perf_counter()
            got = device.measure_all(all_bench, calls=calls)
            f.write(json.dumps({"all_cost_s": time.perf_counter() - t, "cases": len(got), "mlx": version(),
                                "pid": os.getpid()}) + "\n")
            for key, val in got.items():
                if isinstance(val, dict) and "skip" in val:
                    continue  # skipped: not selected, or not in this release
                name, rest = key[len("device."):].split(".track_device_time(", 1)
                label, be = rest[1:-2].split("', '")
                row = {"case": name, "label": label, "backend": be, "mlx": version(), "pid": os.getpid(), "all": True}
                row.update({"error": val} if isinstance(val, str) else {"device": val})
                f.write(json.dumps(row) + "\n")
        f.write(json.dumps({"process_s": time.perf_counter() - t0, "mlx": version(), "pid": os.getpid()}) + "\n")


def ncu_child(cases, backends, out, calls):
    import torch

    from benchmarks import common, ops

    seq = []

    def marker():
        torch.cuda._sleep(1)
        torch.cuda.synchronize()

    for name, label in cases:
        for be in backends:
            try:
                call = getattr(ops, name).callable(label, be)
                call()
            except Exception as e:  # noqa: BLE001
                seq.append({"case": name, "label": label, "backend": be, "error": f"{type(e).__name__}: {e}"[:200]})
                continue
            torch.cuda.profiler.start()
            for i in range(calls):
                marker()
                call()
            marker()
            torch.cuda.profiler.stop()
            seq.append({"case": name, "label": label, "backend": be, "calls": calls})
            common.CACHE.clear()
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"mlx": version(), "seq": seq}, f)


def ncu_rows(path):
    """[(kernel name, {metric: value})] in launch order from ``ncu --csv --page raw``."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [ln for ln in f if ln.startswith('"')]
    rows = list(csv.reader(lines))
    if not rows:
        return []
    head = rows[0]
    idx = {h: i for i, h in enumerate(head)}
    out = []
    for r in rows[1:]:
        if not r or not r[idx["ID"]].isdigit():
            continue  # the units row
        vals = {}
        for m in NCU_METRICS:
            if m in idx:
                try:
                    vals[m] = float(r[idx[m]].replace(",", ""))
                except ValueError:
                    vals[m] = None
        out.append((int(r[idx["ID"]]), r[idx["Kernel Name"]], vals))
    out.sort()
    return [(n, v) for _, n, v in out]


def ncu_parse(seq_path, csv_path):
    """Per (case, backend): each call's summed metrics, splitting the kernel list at the markers."""
    with open(seq_path, encoding="utf-8") as f:
        seq = json.load(f)
    rows = ncu_rows(csv_path)
    segments, cur = [], None
    for name, vals in rows:
        if "spin_kernel" in name:
            if cur is not None:
                segments.append(cur)
            cur = []
        elif cur is not None:
            cur.append((name, vals))
    if cur:
        segments.append(cur)  # kernels after the last marker (none expected)
    results, i = [], 0
    for item in seq["seq"]:
        if "error" in item:
            results.append(item)
            continue
        per = []
        for _ in range(item["calls"]):
            seg = segments[i] if i < len(segments) else []
            i += 1
            per.append({m: sum((v.get(m) or 0) for _, v in seg) for m in NCU_METRICS} | {
                "kernels": [n[:80] for n, _ in seg]})
        # each case ends with a marker and the next begins with one: an empty segment between them
        if i < len(segments) and not segments[i]:
            i += 1
        results.append(dict(item, per_call=per))
    return {"mlx": seq["mlx"], "cases": results, "segments": len(segments)}


def pct(x, digits=2):
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def sd_log(values):
    vals = [v for v in values if v and v > 0]
    if len(vals) < 2:
        return None
    return statistics.stdev(math.log(v) for v in vals)


def observation(per_call):
    from benchmarks import device

    return device.observation(per_call)


def ncu_table(folder):
    """{(mlx, case, label, backend): (instructions per call, [DRAM bytes read+written per call], cost s)}"""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "ncu-*.json"))):
        if os.path.basename(path).startswith("ncu-seq-"):
            continue
        with open(path, encoding="utf-8") as f:
            got = json.load(f)
        for c in got["cases"]:
            if "error" in c:
                continue
            out[(got["mlx"], c["case"], c["label"], c["backend"])] = (
                [p["smsp__inst_executed.sum"] for p in c["per_call"]],
                [p["dram__bytes_read.sum"] + p["dram__bytes_write.sum"] for p in c["per_call"]])
    return out


def summary(folder):
    """The spreads side by side: between processes, the sd of the log of each process's fastest wall
    sample and of its device observation (its fastest profiled call); ncu's instructions and DRAM
    bytes per call (one ncu process a release: the spread over its calls)."""
    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "measure-*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            rows += [r for r in (json.loads(x) for x in f if x.strip()) if "case" in r and not r.get("all")]
    by = {}
    for r in rows:
        by.setdefault((r["mlx"], r["case"], r["label"], r["backend"]), []).append(r)
    ncu = ncu_table(folder)
    print("| MLX | case | backend | procs | wall: fastest, median over procs | spread wall | device: fastest call, "
          "median over procs | spread device | ncu instructions a call (spread over 3 calls) | ncu DRAM bytes a "
          "call (spread) | cost a case: wall s, device s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key, rs in sorted(by.items()):
        ok = [r for r in rs if "error" not in r]
        if not ok:
            print(f"| {key[0]} | {key[1]} '{key[2]}' | {key[3]} | {len(rs)} | error: {rs[0]['error'][:90]} ||||||")
            continue
        wb = [min(r["wall"]) for r in ok]
        dm = [observation(r["device"]) for r in ok]
        ins, byt = ncu.get(key, (None, None))
        ncu_i = f"{int(statistics.median(ins)):,} ({pct(sd_log(ins) or 0.0, 3)})" if ins else "-"
        ncu_b = f"{int(statistics.median(byt)):,} ({pct(sd_log(byt), 3)})" if byt else "-"
        print(f"| {key[0]} | {key[1]} '{key[2]}' | {key[3]} | {len(ok)} | {statistics.median(wb) * 1e6:.1f} us | "
              f"{pct(sd_log(wb))} | {statistics.median(dm) * 1e6:.2f} us | {pct(sd_log(dm), 2)} | {ncu_i} | {ncu_b} | "
              f"{statistics.median(r['wall_cost_s'] for r in ok):.2f}, "
              f"{statistics.median(r['device_cost_s'] for r in ok):.3f} |")
    for be in ("mlx_gpu", "torch_cuda"):
        sw, sd = [], []
        for key, rs in by.items():
            ok = [r for r in rs if "error" not in r]
            if key[3] == be and len(ok) > 1:
                sw.append(sd_log([min(r["wall"]) for r in ok]))
                sd.append(sd_log([observation(r["device"]) for r in ok]))
        if sw:
            print(f"\n{be}: median spread over {len(sw)} cases: wall {pct(statistics.median(sw))}, "
                  f"device {pct(statistics.median(sd), 2)}")


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("mode", choices=["measure", "ncu-child", "ncu-parse", "summary"])
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--cases")
    ap.add_argument("--backends", default="mlx_gpu,torch_cuda")
    ap.add_argument("--out")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--min-calls", type=int, default=20)
    ap.add_argument("--min-time", type=float, default=0.1)
    ap.add_argument("--all", dest="all_bench", help="measure: then every case of benchmarks/device.py whose asv "
                    "name matches this regex, by its measure_all (one row a case, \"all\": true)")
    a = ap.parse_args(argv)
    backends = a.backends.split(",")
    if a.mode == "measure":
        measure(read_cases(a.cases) if a.cases else [], backends, a.out, a.calls, a.min_calls, a.min_time,
                a.all_bench)
    elif a.mode == "ncu-child":
        ncu_child(read_cases(a.cases), backends, a.out, a.calls)
    elif a.mode == "ncu-parse":
        got = ncu_parse(*a.paths)
        json.dump(got, sys.stdout)
    else:
        summary(a.paths[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
