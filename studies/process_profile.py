"""Where asv's per-case processes spend their time: reads the events that
benchmarks/common.py writes under ``MLX_ASV_PROFILE=FILE`` and splits every
process's wall time into phases.

    MLX_ASV_PROFILE=/tmp/prof.jsonl bash mlx_asv/gpu/gpu_asv.sh h200 REGEX
    python -m studies.process_profile /tmp/prof.jsonl [--json OUT.json] [--by backend|bench|case]

A process's events, in order: ``fork`` (the forked child starts, from asv's
forkserver), ``setup`` (every call of the benchmark's setup; the first one
names the case), ``mlx_imported`` and ``ledger_checked`` (the first release
check: MLX's import, then the ledger lookup), ``build``, ``inputs`` (the op
and its NumPy inputs made), ``on_device`` (the inputs copied to the
backend's device), ``built`` (the timed callable made and called once).
The phases:

- ``start``: fork to the first setup call (asv's child finds the benchmark);
- ``mlx_import``, ``ledger``: the release check's two parts;
- ``backend``: from the check to the start of the build;
- ``inputs``, ``to_device``, ``warmup`` (for families without the finer
  events, the whole build is ``warmup``);
- ``sampling``: from the built callable to the last setup call (asv's
  warm-up loop and all samples but the last);
- ``tail``: the last setup call to the next process's fork (the last sample,
  the child's exit, asv writing the result and sending the next case); the
  run's last process has none.

Only wall-clock differences between events of the run's processes; the
timed samples themselves are in asv's results.
"""

from __future__ import annotations

import collections
import json
import statistics
import sys

from mlx_asv import cli

PHASES = ("start", "mlx_import", "ledger", "backend", "inputs", "to_device", "warmup", "sampling", "tail")


def read_events(path):
    """The events of a profile file, sorted by time; a torn last line is skipped."""
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    events.sort(key=lambda e: e["t"])
    return events


def processes(events):
    """One dict per process (pid), in the order they were forked: its case and its phases (s)."""
    by_pid = collections.OrderedDict()
    for e in events:
        by_pid.setdefault(e["pid"], []).append(e)
    procs = []
    for pid, evs in by_pid.items():
        first = {}
        setups = []
        for e in evs:
            if e["ev"] == "setup":
                setups.append(e)
            first.setdefault(e["ev"], e)
        if "fork" not in first:
            continue  # not a forked case process (e.g. a test run without asv)
        p = {"pid": pid, "fork": first["fork"]["t"], "setups": len(setups),
             "bench": setups[0].get("bench") if setups else None,
             "case": setups[0].get("case") if setups else None,
             "backend": setups[0].get("backend") if setups else None,
             "last": max(e["t"] for e in evs), "phases": {}}
        ph = p["phases"]
        if setups:
            t0 = setups[0]["t"]
            ph["start"] = t0 - p["fork"]
            t = t0
            if "mlx_imported" in first:
                ph["mlx_import"] = first["mlx_imported"]["t"] - t
                t = first["mlx_imported"]["t"]
            if "ledger_checked" in first:
                ph["ledger"] = first["ledger_checked"]["t"] - t
                t = first["ledger_checked"]["t"]
            if "build" in first:
                ph["backend"] = first["build"]["t"] - t
                t = first["build"]["t"]
                if "inputs" in first and "on_device" in first:
                    ph["inputs"] = first["inputs"]["t"] - t
                    ph["to_device"] = first["on_device"]["t"] - first["inputs"]["t"]
                    t = first["on_device"]["t"]
                if "built" in first:
                    ph["warmup"] = first["built"]["t"] - t
                    t = first["built"]["t"]
            ph["sampling"] = max(setups[-1]["t"] - t, 0.0)
        procs.append(p)
    procs.sort(key=lambda p: p["fork"])
    for p, nxt in zip(procs, procs[1:]):
        if p["phases"]:
            last_setup = p["fork"] + sum(p["phases"].values())
            p["phases"]["tail"] = nxt["fork"] - last_setup
        p["total"] = nxt["fork"] - p["fork"]
    if procs:
        procs[-1]["total"] = None
    return procs


def summarize(procs, by="backend"):
    """{group: {"n", "total", phase: {"sum", "median"}}}, grouped by ``by``
    ("backend", "bench", "case": bench|case|backend, or "all")."""
    groups = collections.OrderedDict()
    for p in procs:
        if by == "all":
            g = "all"
        elif by == "case":
            g = f"{p['bench']}|{p['case']}|{p['backend']}"
        elif by == "bench+backend":
            g = f"{p['bench']}|{p['backend']}"
        else:
            g = p.get(by) or "-"
        groups.setdefault(g, []).append(p)
    out = collections.OrderedDict()
    for g, ps in groups.items():
        row = {"n": len(ps), "total": sum(p["total"] for p in ps if p.get("total") is not None)}
        for name in PHASES:
            vals = [p["phases"][name] for p in ps if name in p["phases"]]
            row[name] = {"sum": sum(vals), "median": statistics.median(vals) if vals else None}
        out[g] = row
    return out


def render(summary, title):
    lines = [f"{title}: seconds, sum over processes (median a process)",
             "| group | n | total | " + " | ".join(PHASES) + " |",
             "|---|---|---|" + "---|" * len(PHASES)]
    for g, row in summary.items():
        cells = []
        for name in PHASES:
            c = row[name]
            cells.append("-" if c["median"] is None else f"{c['sum']:.1f} ({c['median']:.3f})")
        lines.append(f"| {g} | {row['n']} | {row['total']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    # the docstring's first line alone, as its --help has always read
    ap = cli.parser(__doc__.splitlines()[0], wrap=True)
    ap.add_argument("profile", help="the MLX_ASV_PROFILE file")
    ap.add_argument("--by", default="backend", choices=("backend", "bench", "bench+backend", "case", "all"))
    ap.add_argument("--json", help="write the processes and the summary here")
    args = ap.parse_args(argv)
    procs = processes(read_events(args.profile))
    if not procs:
        print(f"{args.profile}: no forked benchmark process in it", file=sys.stderr)
        return 1
    span = procs[-1]["last"] - procs[0]["fork"]
    print(f"{len(procs)} processes over {span:.1f} s (first fork to last event)")
    print(render(summarize(procs, "all"), "all"))
    print()
    print(render(summarize(procs, args.by), f"by {args.by}"))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"processes": procs, "summary": summarize(procs, args.by)}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
