#!/usr/bin/env python3
"""Issue 27: the device-track history folder from the device calls' asv result files.

    python -m studies.gpu27.publish OUT_DIR MACHINE RESULTS.json ...     write the folder
    python -m studies.gpu27.publish --table OUT_DIR                      its per-release table

Each results file keeps only benchmarks/device.py's tracks and ops.track_mlx_version (the
combined run of ops.py also holds ops.py's time_ benchmarks, left out here), and its machine name
becomes MACHINE (asv's folder and machine agree); machine.json is the first file's folder's.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys

from mlx_asv import cli


def keep(key):
    return key.startswith("device.") or key == "ops.track_mlx_version" or key == "<build>" \
        or key.startswith("<setup_cache device")


def publish(out, machine, files):
    os.makedirs(out, exist_ok=True)
    for i, path in enumerate(files):
        r = json.load(open(path))
        r["results"] = {k: v for k, v in r["results"].items() if keep(k)}
        r["durations"] = {k: v for k, v in r["durations"].items() if keep(k)}
        r["params"]["machine"] = machine
        with open(os.path.join(out, os.path.basename(path)), "w") as f:
            json.dump(r, f, indent=None, sort_keys=True)
        if i == 0:
            m = json.load(open(os.path.join(os.path.dirname(path), "machine.json")))
            m["machine"] = machine
            with open(os.path.join(out, "machine.json"), "w") as f:
                json.dump(m, f, indent=4, sort_keys=True)


def values(path):
    r = json.load(open(path))
    out, version = {}, None
    for key, v in r["results"].items():
        cols = dict(zip(r["result_columns"], v))
        if key == "ops.track_mlx_version":
            x = cols["result"][0] if isinstance(cols["result"], list) else cols["result"]
            minor = int(x * 1000 + 1e-6)  # ops.track_mlx_version: major + minor / 1e3 + patch / 1e6
            version = f"{int(x)}.{minor % 1000}.{round((x * 1000 - minor) * 1000)}"
            continue
        for p, x in zip(itertools.product(*cols["params"]), cols["result"]):
            out[f"{key}({', '.join(p)})"] = x
    return version, out


def table(folder):
    rows = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and name != "machine.json":
            rows.append(values(os.path.join(folder, name)))
    rows.sort(key=lambda r: tuple(int(x) for x in str(r[0]).split(".")) if r[0] else ())
    base = rows[-1][1]
    sort2 = "device.Sort.track_device_time('dim=64x128x1024 axis=2', '{}')"
    print("| release | device values | failed (null) | Sort 64x128x1024 axis=2, mlx_gpu | same, torch_cuda "
          "| geometric mean vs newest, mlx_gpu (cases in both) | same, torch_cuda |")
    print("|---|---|---|---|---|---|---|")
    us = lambda x: "failed" if x is None else ("n/a" if x != x else f"{x * 1e6:.1f} us")
    for version, vals in rows:
        ok = sum(1 for x in vals.values() if x is not None and x == x)
        failed = sum(1 for x in vals.values() if x is None)
        gm = {}
        for be in ("mlx_gpu", "torch_cuda"):
            logs = [math.log(x / base[k]) for k, x in vals.items() if k.endswith(f"'{be}')") and x and x == x
                    and base.get(k) and base[k] == base[k]]
            gm[be] = f"{math.exp(sum(logs) / len(logs)):.3f}x ({len(logs)})" if logs else ""
        print(f"| {version} | {ok} | {failed} | {us(vals.get(sort2.format('mlx_gpu')))} "
              f"| {us(vals.get(sort2.format('torch_cuda')))} | {gm['mlx_gpu']} | {gm['torch_cuda']} |")


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--table", metavar="OUT_DIR", help="print a published folder's per-release table")
    p.add_argument("out", nargs="?", help="the folder to write")
    p.add_argument("machine", nargs="?", help="the machine name the results take")
    p.add_argument("files", nargs="*", help="asv result files of the device calls")
    args = p.parse_args(argv)
    if args.table:
        table(args.table)
    elif args.out and args.machine and args.files:
        publish(args.out, args.machine, args.files)
    else:
        p.error("give OUT_DIR MACHINE RESULTS.json ..., or --table OUT_DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
