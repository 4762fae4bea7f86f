#!/usr/bin/env python3
"""Issue 27: the GPU verdict on several estimators of a process's device value, on the same processes.

    python -m studies.gpu27.estimators CALIB_DIR [--format json]

CALIB_DIR holds studies/gpu27/calib.py's processes (measure-a-rK.jsonl, measure-b-rK.jsonl: the
twins, one MLX install). Each estimator turns a case's profiled calls of one process into one
value; the rows are rewritten with that value alone and decided by studies/gpu_verdicts.py's
``analyse`` (the gate's replay, the device thresholds, injected slowdowns in five random thirds),
as ``python -m studies.gpu_verdicts DIR --study --measure device`` decides the study's processes.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile

from mlx_asv import cli



def kmin(kernels, n):
    """Each activity's fastest of the first ``n`` calls, summed (by position; where the calls ran a
    different number of activities, the fastest call's sum): benchmarks/device.py's observation."""
    calls = kernels[:n]
    if len({len(c) for c in calls}) != 1 or not calls[0]:
        return min(sum(c) for c in calls) / 1e9
    return sum(min(c[i] for c in calls) for i in range(len(calls[0]))) / 1e9


ESTIMATORS = {
    "min20": lambda r: min(r["device"][:20]),  # the fastest of 20 calls: the track of the first session
    "min40": lambda r: min(r["device"][:40]),
    "min60": lambda r: min(r["device"]),
    "kmin20": lambda r: kmin(r["kernels"], 20),
    "kmin40": lambda r: kmin(r["kernels"], 40),  # the track as committed in this session
    "kmin60": lambda r: kmin(r["kernels"], 60),
    "median60": lambda r: statistics.median(r["device"]),
}


def rewrite(src, dst, est):
    for name in os.listdir(src):
        if not name.startswith("measure-"):
            continue
        with open(os.path.join(src, name)) as f, open(os.path.join(dst, name), "w") as g:
            for line in f:
                r = json.loads(line)
                if "device" in r:
                    r = dict(r, device=[ESTIMATORS[est](r)])
                    r.pop("kernels", None)
                g.write(json.dumps(r) + "\n")


def summarise(out):
    aa = out["aa"]
    power = aa["power"]
    found = {}
    for f in sorted({p["factor"] for p in power}):
        sel = [p for p in power if p["factor"] == f]
        found[f"+{100 * (f - 1):.0f}%"] = (sum(p["verdict"] == "slower" for p in sel), len(sel))
    faster = sum(p["verdict"] == "faster" for p in power)
    return {"comparisons": aa["comparisons"], "summary": aa["summary"], "alarms": len(aa["alarms"]),
            "mde_median": aa["mde_median"], "mde_budget_median": aa["mde_budget_median"],
            "processes": aa["processes"], "found": found, "injected_called_faster": faster,
            "spread_sd_median": aa["spread"].get("sd_median"),
            "missed_5pct": sorted({p["key"] for p in power if abs(p["factor"] - 1.05) < 1e-9 and p["verdict"] != "slower"})}


def main(argv=None):
    from studies import gpu_verdicts as gv

    ap = cli.parser(__doc__)
    ap.add_argument("folder")
    ap.add_argument("--estimators", default=",".join(ESTIMATORS))
    ap.add_argument("--format", choices=("table", "json"), default="table")
    args = ap.parse_args(argv)
    res = {}
    for est in args.estimators.split(","):
        with tempfile.TemporaryDirectory() as d:
            rewrite(args.folder, d, est)
            out = gv.analyse(gv.StudyRounds(d, "device"), min_effect=gv.DEVICE_MIN_EFFECT,
                             same_within=gv.DEVICE_SAME_WITHIN)
        res[est] = summarise(out)
    if args.format == "json":
        print(json.dumps(res, indent=1))
        return
    print("| estimator | A/A false alarms | A/A verdicts | median MDE (processes the gate used) | median MDE, all 6+6 "
          "| median spread | +5% found | +10% found | +20% found | injected called faster |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for est, s in res.items():
        f = s["found"]
        cell = lambda k: f"{f[k][0]} of {f[k][1]} ({100 * f[k][0] / f[k][1]:.0f}%)" if k in f else ""
        print(f"| {est} | {s['alarms']} of {s['comparisons']} | {', '.join(f'{v} {k}' for k, v in s['summary'].items() if v)} "
              f"| {100 * s['mde_median']:.1f}% ({s['processes']}) | {100 * s['mde_budget_median']:.1f}% "
              f"| {100 * s['spread_sd_median']:.2f}% | {cell('+5%')} | {cell('+10%')} | {cell('+20%')} "
              f"| {s['injected_called_faster']} |")


if __name__ == "__main__":
    main()
