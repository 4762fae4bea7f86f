#!/usr/bin/env python3
"""Measure the verdicts' error rates on this machine: A/A, power, localization.

    python studies/calibrate.py                     # one gate run: A/A + injected slowdowns
    python studies/calibrate.py --runs 5            # five of them, one after the other
    python studies/calibrate.py --localize -b '^ops\\.(Softmax|Sum)\\.'   # steps in a 4-commit history
    python studies/calibrate.py --summary           # the tables over every run so far

Each gate run compares a release (``--release``, default the ledger's newest)
with a *twin*: a ledger candidate that installs the very same wheel under
another commit (``tools/ledger.py --candidate ... --same-as``), through the
gate of tools/gate.py, over ops.py on the backends this machine has. In a
random third of the cases the twin is slowed by an exact factor (a third of
those each by 5%, 10% and 20%, ``--inject``): the timed call runs, then
spins until its start plus factor times its own duration
(benchmarks/common.py, ``stretched``). So:

- the other two thirds are A/A comparisons: any "slower" or "faster" there
  is a false alarm (per comparison, and per gate run: did the run have any);
- the injected third measures power: the share called "slower", by factor
  and by the case's duration; one called "faster" is a wrong sign;
- every case's minimum detectable effect at 80% power comes from its
  measured noise (mlx_asv/decide/verdicts.py).

``--localize`` measures a history instead: the release, then three twins in
a row; a random third of the cases steps up by ``--step`` (default 20%) at
one random twin and stays there; binary segmentation (verdicts.locate_steps)
must put each step between the right two commits.

The injection switch is honoured only in these runs: the runs' asv config
(``.asv/calibration/<id>/asv.conf.json``, results beside it) puts
MLX_ASV_INJECT in asv's matrix, and the plan names only the twins' commits
(see benchmarks/common.py). Results go to ``.asv/calibration/<id>/`` and
never mix with ``results/``.
"""

from __future__ import annotations

import glob
import json
import math
import os
import random
import statistics
import sys
import time

from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import gate as gatemod
from mlx_asv.envs import ledger
from mlx_asv.measure import protocol
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FOLDER = os.path.join(ROOT, ".asv", "calibration")
DURATION_CLASSES = ((0, 1e-3, "< 1 ms"), (1e-3, 1e-2, "1-10 ms"), (1e-2, 1e-1, "10-100 ms"),
                    (1e-1, 1.0, "0.1-1 s"), (1.0, math.inf, ">= 1 s"))


def ops_cases(backends):
    """[(asv key, plan key)] of every ops.py case on ``backends``."""
    from benchmarks import common, ops

    out = []
    for name in dir(ops):
        cls = getattr(ops, name)
        if isinstance(cls, type) and issubclass(cls, common.CaseTable) and cls.cases:
            method = next((m for m in dir(cls) if m.startswith("time_")), None)
            for case in cls.cases if method else ():
                for b in backends:
                    if b in cls.backends:
                        out.append((f"ops.{cls.__name__}.{method}({case.label!r}, {b!r})",
                                    common.injection_key(cls, case.label, b)))
    return sorted(out)


def duration_class(seconds):
    for lo, hi, label in DURATION_CLASSES:
        if seconds is not None and lo <= seconds < hi:
            return label
    return "?"


def new_twin(release, run_id, log):
    return ledger.add_candidate(run_id, release, same_as=release, log=log)


def write_plan(folder, commits):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "plan.json"), "w") as f:
        json.dump({"commits": commits}, f, indent=1)


def gate_run(args, backends, log, index=0):
    run_id = f"calib-{protocol.stamp()}"
    folder = os.path.join(FOLDER, run_id)
    release_commit = protocol.resolve(args.release)
    twin = new_twin(args.release, run_id, log)
    # a fresh random third each run (--seed makes the sequence repeatable)
    rng = random.Random(args.seed * 1000 + index if args.seed is not None else time.time_ns())
    cases = ops_cases(backends)
    if args.bench:
        import re

        cases = [c for c in cases if re.search(args.bench, c[0])]
    chosen = rng.sample(cases, len(cases) // 3)
    factors = [1.0 + float(x) for x in args.inject.split(",")]
    injected = {plan_key: factors[i % len(factors)] for i, (_, plan_key) in enumerate(chosen)}
    write_plan(folder, {twin: injected})
    bench = protocol.case_regex([k for k, _ in cases]) if args.bench else protocol.bench_regex(backends)
    g = gatemod.Gate(release_commit, twin, bench, folder, budget_s=args.budget * 60,
                     env_nobuild={"MLX_ASV_INJECT": run_id}, log=log)
    try:
        g.run()
    finally:
        ledger.remove_candidate(run_id)
    report = g.as_json()
    by_asv = {k: p for k, p in cases}
    rows = []
    for c in report["cases"]:
        factor = injected.get(by_asv.get(c["key"], ""), 1.0)
        rows.append(dict(key=c["key"], factor=factor, verdict=c["verdict"], ratio=c["ratio"],
                         lo=c["lo"], hi=c["hi"], base_s=c["base_s"], mde=c["mde"], note=c["note"]))
    out = {"run": run_id, "kind": "gate", "release": args.release, "twin": twin, "seconds": report["seconds"],
           "rounds": report["rounds"], "stages": report["stages"], "alpha": report["alpha"],
           "min_effect": report["min_effect"], "cases": rows}
    with open(os.path.join(folder, "calibration.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(folder, "verdicts.md"), "w") as f:
        f.write(gatemod.markdown(report))
    return out


def localize_run(args, backends, log):
    run_id = f"calib-{protocol.stamp()}"
    folder = os.path.join(FOLDER, run_id)
    release_commit = protocol.resolve(args.release)
    twins = [new_twin(args.release, f"{run_id}-{i}", log) for i in range(1, 4)]
    history = [release_commit] + twins
    rng = random.Random(args.seed if args.seed is not None else time.time_ns())
    cases = ops_cases(backends)
    if args.bench:
        import re

        cases = [c for c in cases if re.search(args.bench, c[0])]
    chosen = rng.sample(cases, max(1, len(cases) // 3))
    step_at = {plan_key: rng.randrange(1, len(history)) for _, plan_key in chosen}
    factor = 1.0 + args.step
    plan = {t: {} for t in twins}
    for plan_key, at in step_at.items():
        for i in range(at, len(history)):
            plan[history[i]][plan_key] = factor
    write_plan(folder, plan)
    session = protocol.Session(folder, history, protocol.case_regex([k for k, _ in cases]),
                               env_nobuild={"MLX_ASV_INJECT": run_id}, log=log)
    started = time.time()
    try:
        for _ in range(args.rounds):
            session.round()
    finally:
        for i in range(1, 4):
            ledger.remove_candidate(f"{run_id}-{i}")
    series = {k: (vd.prior_group(protocol.group_of(k), session.data.get(k, {}).get(release_commit)),
                  [(c[:8], session.data.get(k, {}).get(c, [])) for c in history])
              for k, _ in cases}
    steps = vd.locate_steps(series)
    names = [c[:8] for c in history]
    rows = []
    for key, plan_key in cases:
        at = step_at.get(plan_key)
        found = [(names.index(s.after), s.ratio, s.verdict) for s in steps.get(key, [])]
        rows.append(dict(key=key, step_at=at, found=found))
    out = {"run": run_id, "kind": "localize", "release": args.release, "history": history, "step": args.step,
           "rounds": args.rounds, "seconds": round(time.time() - started, 1), "cases": rows}
    with open(os.path.join(folder, "calibration.json"), "w") as f:
        json.dump(out, f, indent=1)
    return out


def asv_rule(base, cand, factor=1.1):
    """What `asv continuous` (factor 1.1) says of one process a side: 'slower',
    'faster' or None, with asv's own statistics (median, Mann-Whitney where
    the samples allow it, else non-overlapping 99% intervals)."""
    from asv import _stats
    from asv_runner.statistics import compute_stats

    a, sa = compute_stats(base, 1)
    b, sb = compute_stats(cand, 1)
    if a is None or b is None:
        return None
    different = sa.get("repeat", 0) == 1 or sb.get("repeat", 0) == 1 or _stats.is_different(base, cand, sa, sb)
    if different and b > a * factor:
        return vd.SLOWER
    if different and a > b * factor:
        return vd.FASTER
    return None


def asv_rule_on_run(run, folder=FOLDER):
    """asv continuous's flags on a gate run's first round: {case key: flag}."""
    try:
        with open(os.path.join(folder, run["run"], "rounds.json"), encoding="utf-8") as f:
            data = json.load(f)["data"]
    except (OSError, ValueError, KeyError):
        return {}
    base, twin = protocol.resolve_quiet(run), run["twin"]
    out = {}
    for c in run["cases"]:
        sides = data.get(c["key"], {})
        first = [runs[0] for runs in (sides.get(base), sides.get(twin)) if runs]
        if len(first) == 2:
            out[c["key"]] = asv_rule(*first)
    return out


def load_runs(folder=FOLDER):
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, "*", "calibration.json"))):
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError):
            print(f"calibrate: {path} is not readable JSON; left out", file=sys.stderr)
    return runs


def recorded_rounds(run, folder=FOLDER):
    """A gate run's recorded processes (its ``rounds.json``'s data), or None
    where they are missing or unreadable."""
    try:
        with open(os.path.join(folder, run["run"], "rounds.json"), encoding="utf-8") as f:
            return json.load(f)["data"]
    except (OSError, ValueError, KeyError):
        return None


def replayed(run, folder=FOLDER):
    """A gate run's record with its verdicts decided again from its recorded
    rounds by the current statistics (tools/gate.py's replay), or the record
    unchanged where its rounds are missing."""
    data = recorded_rounds(run, folder)
    if data is None:
        return run
    base = protocol.resolve_quiet(run)
    verdicts = gatemod.replay(data, base, run["twin"], alpha=run.get("alpha", vd.ALPHA),
                              min_effect=run.get("min_effect", vd.MIN_EFFECT))
    cases = []
    for c in run["cases"]:
        v = verdicts.get(c["key"])
        cases.append(dict(c, verdict=v.verdict, ratio=v.ratio, lo=v.lo, hi=v.hi,
                          mde=v.minimum_detectable_effect(alpha=run.get("alpha", vd.ALPHA) / 3)) if v else c)
    return dict(run, cases=cases)


def summarize(runs, folder=FOLDER):
    """The calibration tables (Markdown) over ``runs``."""
    gates = [r for r in runs if r["kind"] == "gate"]
    locs = [r for r in runs if r["kind"] == "localize"]
    lines = ["# Calibration of the verdicts on this machine", ""]
    if gates:
        aa = [c for r in gates for c in r["cases"] if c["factor"] == 1.0]
        alarms = [c for c in aa if c["verdict"] in (vd.SLOWER, vd.FASTER)]
        runs_with = sum(1 for r in gates if any(c["factor"] == 1.0 and c["verdict"] in (vd.SLOWER, vd.FASTER)
                                               for c in r["cases"]))
        und = sum(1 for c in aa if c["verdict"] == vd.UNDECIDED)
        lines += [f"## A/A: {len(gates)} gate runs, {len(aa)} comparisons of a release with its twin", "",
                  f"- false alarms: {len(alarms)} of {len(aa)} comparisons "
                  f"({100 * len(alarms) / max(len(aa), 1):.2f}%), in {runs_with} of {len(gates)} gate runs",
                  f"- undecided: {und} ({100 * und / max(len(aa), 1):.1f}%); same: "
                  f"{sum(1 for c in aa if c['verdict'] == vd.SAME)}",
                  "- gate run times: " + ", ".join("%.1f" % (r["seconds"] / 60) for r in gates) + " min"]
        for c in alarms:
            lines.append(f"  - {c['verdict']}: {c['key']} ratio {c['ratio']:.3f} ({c['lo']:.3f}-{c['hi']:.3f})")
        # asv's own rule on the same measurements: the first round, one process a side
        flagged = total = runs_flagged = 0
        for r in gates:
            flags = asv_rule_on_run(r, folder)
            aa_keys = [c["key"] for c in r["cases"] if c["factor"] == 1.0 and c["key"] in flags]
            hits = sum(1 for k in aa_keys if flags[k])
            flagged, total, runs_flagged = flagged + hits, total + len(aa_keys), runs_flagged + bool(hits)
        if total:
            lines.append(f"- asv continuous's rule (factor 1.1; Mann-Whitney p < 0.002, else 99% intervals) on "
                         f"the same A/A comparisons, each side's first process: {flagged} of {total} flagged "
                         f"({100 * flagged / total:.1f}%), in {runs_flagged} of {len(gates)} runs")
        inj = [c for r in gates for c in r["cases"] if c["factor"] != 1.0]
        if inj:
            factors = sorted({c["factor"] for c in inj})
            lines += ["", "## Power: injected slowdowns, share called slower", "",
                      "| case duration | " + " | ".join(f"+{100 * (f - 1):.0f}%" for f in factors) + " |",
                      "|---|" + "---|" * len(factors)]

            def row(label, chosen):
                """A table row: per factor, the injected cases ``chosen`` keeps, and how many were called slower."""
                cells = []
                for f in factors:
                    sel = [c for c in inj if c["factor"] == f and chosen(c)]
                    hit = sum(1 for c in sel if c["verdict"] == vd.SLOWER)
                    cells.append(f"{hit}/{len(sel)}" + (f" ({100 * hit / len(sel):.0f}%)" if sel else ""))
                return f"| {label} | " + " | ".join(cells) + " |"

            def long(c):
                return (c["base_s"] or 0) >= 1e-3

            for _, _, label in DURATION_CLASSES:
                lines.append(row(label, lambda c, label=label: duration_class(c["base_s"]) == label))
            lines.append(row("all >= 1 ms", long))
            # by backend: MLX's rows are what a release or a pull request changes
            for backend in sorted({protocol.group_of(c["key"]) for c in inj} - {""}):
                lines.append(row(f"{backend}, >= 1 ms",
                                 lambda c, backend=backend: long(c) and protocol.group_of(c["key"]) == backend))
            wrong = [c for c in inj if c["verdict"] == vd.FASTER]
            lines.append("")
            lines.append(f"Injected slowdowns called faster: {len(wrong)} of {len(inj)}.")
        mde = {}
        for r in gates:
            for c in r["cases"]:
                if c["mde"] == c["mde"] and c["mde"] is not None:
                    mde.setdefault(c["key"], []).append(c["mde"])
        if mde:
            vals = sorted(sorted(v)[len(v) // 2] for v in mde.values())
            lines += ["", f"## Minimum detectable effect (80% power, as the gate measures): median over "
                          f"{len(vals)} cases {100 * vals[len(vals) // 2]:.1f}%, 90th percentile "
                          f"{100 * vals[int(0.9 * (len(vals) - 1))]:.1f}%; per case: "
                          f"`python studies/calibrate.py --summary --format json`"]
        priced = target_costs(gates, folder)
        if priced and priced[0]["cases"]:
            ratio, n = pairing_ratio(gates, folder)
            paired = (f" The spread of the two sides' differences within a round against the unpaired spread: "
                      f"median ratio {ratio:.2f} over {n} A/A cases (near 1: pairing the sides would not narrow "
                      f"it)." if ratio else "")
            lines += ["", "## What the power targets would take here", "",
                      f"Processes a side each case of 1 ms or more needs, from its noise measured in these runs "
                      f"(pooled A/A processes), at the gate's level, and the machine time of measuring both "
                      f"sides that often (each case's process cost, .asv/costs.json); the 15-minute gate "
                      f"affords 2-4 processes a side. The median case's process-to-process standard "
                      f"deviation (of the log of a process's fastest sample) is "
                      f"{100 * priced[0]['sd_median']:.1f}%.{paired}", "",
                      "| target | cases | processes a side, median / p90 | cases needing at most 4 "
                      "| machine time |", "|---|---|---|---|---|"]
            for t in priced:
                lines.append(f"| +{100 * t['effect']:.0f}% at {100 * t['power']:.0f}% power | {t['cases']} | "
                             f"{t['median']} / {t['p90']} | {t['within_4']} | {t['hours']:.1f} h |")
    if locs:
        total = right = extra = 0
        for r in locs:
            for c in r["cases"]:
                if c["step_at"]:
                    total += 1
                    if [f[0] for f in c["found"]] == [c["step_at"]]:
                        right += 1
                elif c["found"]:
                    extra += 1
        lines += ["", f"## Localization: {len(locs)} histories of 4 commits, steps of "
                      f"+{100 * locs[0]['step']:.0f}%", "",
                  f"- steps attributed to the right pair (and no other): {right} of {total} "
                  f"({100 * right / max(total, 1):.0f}%)",
                  f"- cases without a step where one was found: {extra}"]
    if not runs:
        lines.append("No calibration runs yet: python studies/calibrate.py")
    return "\n".join(lines) + "\n"


# The power targets: (effect, power) pairs the table below prices.
POWER_TARGETS = ((0.10, 0.90), (0.20, 0.99))


def noise_by_case(gates, folder=FOLDER):
    """{case key: (variance of a process's observation, degrees of freedom)},
    pooled over the gate runs' recorded rounds (``rounds.json``): both sides
    of an A/A case, the base side of an injected one."""
    pooled = {}
    for r in gates:
        data = recorded_rounds(r, folder)
        if data is None:
            continue
        factor = {c["key"]: c["factor"] for c in r["cases"]}
        for key, per in data.items():
            sides = [per[c] for c in per if factor.get(key) == 1.0 or c != r["twin"]]
            v, d = vd.pooled([vd.process_observations(runs) for runs in sides])
            if v is not None and d:
                ss, dd = pooled.get(key, (0.0, 0))
                pooled[key] = (ss + v * d, dd + d)
    return {k: (ss / dd, dd) for k, (ss, dd) in pooled.items()}


def pairing_ratio(gates, folder=FOLDER):
    """The median over A/A cases of sd(paired) / sd(unpaired): the spread of
    the two sides' differences taken within a round (over sqrt 2) against the
    spread of the processes themselves. Near 1: the noise belongs to the
    process, not to the moment it ran, and pairing the sides buys nothing."""
    ratios = []
    for r in gates:
        data = recorded_rounds(r, folder)
        if data is None:
            continue
        aa = {c["key"] for c in r["cases"] if c["factor"] == 1.0}
        for key, per in data.items():
            if key not in aa or len(per) != 2:
                continue
            sides = [[vd.process_observations([p]) for p in runs] for runs in per.values()]
            pairs = [(b[0], c[0]) for b, c in zip(*sides) if b and c]
            unpaired, _ = vd.pooled([[b for b, _ in pairs], [c for _, c in pairs]])
            if len(pairs) < 3 or not unpaired:
                continue
            paired = statistics.variance([c - b for b, c in pairs]) / 2
            ratios.append(math.sqrt(paired / unpaired))
    ratios.sort()
    return (ratios[len(ratios) // 2] if ratios else None), len(ratios)


def processes_needed(sd, effect, power, alpha, min_effect):
    """Processes a side at which a case with per-process standard deviation
    ``sd`` (log time) calls a slowdown of ``effect`` slower with ``power``
    (normal quantiles: the moderated test's degrees of freedom are large then)."""
    gap = math.log1p(effect) - math.log1p(min_effect)
    if gap <= 0:
        return math.inf
    z = vd.t_quantile(1 - alpha / 2, math.inf) + vd.t_quantile(power, math.inf)
    return max(2, math.ceil(2 * (z * sd / gap) ** 2))


def target_costs(gates, folder=FOLDER, costs=None, min_duration=1e-3):
    """What the power targets would take on this machine: for each target,
    the processes a side each case of at least ``min_duration`` needs (from
    its measured noise) and the machine time of measuring that many for both
    sides (each case's process cost, ``.asv/costs.json``), at the gate's
    level (alpha / 3: its three looks)."""
    costs = protocol.load_costs() if costs is None else costs
    noise = noise_by_case(gates, folder)
    base_s = {c["key"]: c["base_s"] for r in gates for c in r["cases"] if c.get("base_s")}
    alpha = gates[0].get("alpha", vd.ALPHA) / 3 if gates else vd.ALPHA / 3
    min_effect = gates[0].get("min_effect", vd.MIN_EFFECT) if gates else vd.MIN_EFFECT
    keys = sorted(k for k in noise if (base_s.get(k) or 0) >= min_duration and k in costs)
    sd_median = sorted(math.sqrt(noise[k][0]) for k in keys)[len(keys) // 2] if keys else None
    out = []
    for effect, power in POWER_TARGETS:
        need = {k: processes_needed(math.sqrt(noise[k][0]), effect, power, alpha, min_effect) for k in keys}
        finite = sorted(n for n in need.values() if math.isfinite(n))
        out.append({"effect": effect, "power": power, "cases": len(keys),
                    "median": finite[len(finite) // 2] if finite else None,
                    "p90": finite[int(0.9 * (len(finite) - 1))] if finite else None,
                    "hours": sum(2 * need[k] * costs[k] for k in keys) / 3600.0,
                    "within_4": sum(1 for n in need.values() if n <= 4), "sd_median": sd_median})
    return out


def mde_by_case(runs=None):
    """{case key: median minimum detectable effect over the gate runs}."""
    from mlx_asv.report.sessions import calibration_mde

    return calibration_mde()


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("--release", help="the release to calibrate on (default: the ledger's newest)")
    ap.add_argument("--runs", type=int, default=1, help="gate runs, one after the other (default 1)")
    ap.add_argument("-b", "--bench", help="a regex on the cases (default: every ops.py case)")
    ap.add_argument("--backends", help="comma-separated (default: those this machine has)")
    ap.add_argument("--inject", default="0.05,0.10,0.20", help="slowdowns injected (default 0.05,0.10,0.20)")
    ap.add_argument("--budget", type=float, default=gatemod.DEFAULT_BUDGET_MIN, help="each gate's budget, minutes")
    ap.add_argument("--seed", type=int, help="random seed of the injected cases")
    ap.add_argument("--localize", action="store_true", help="measure localization in a 4-commit history")
    ap.add_argument("--step", type=float, default=0.20, help="the step injected with --localize")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the --localize history")
    ap.add_argument("--summary", action="store_true", help="print the tables over every run so far")
    ap.add_argument("--replay", action="store_true",
                    help="with --summary: decide every gate run again from its recorded rounds with the "
                         "current statistics (tools/gate.py's replay), instead of the verdicts it recorded")
    ap.add_argument("--folder", default=FOLDER, help="with --summary: where the runs are (default %(default)s)")
    cli.add_format(ap)
    args = ap.parse_args(argv)
    if args.summary:
        runs = load_runs(args.folder)
        if args.replay:
            runs = [replayed(r, args.folder) if r["kind"] == "gate" else r for r in runs]
        if args.format == "json":
            print(json.dumps({"runs": runs, "mde": mde_by_case(runs)}, indent=1))
        else:
            print(summarize(runs, args.folder))
        return 0
    log = lambda m: print(f"calibrate: {m}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        ledger.ensure(log=log)
        args.release = args.release or ledger.newest_tag()
        backends = args.backends.split(",") if args.backends else gatemod.detected_backends()
        for i in range(1 if args.localize else args.runs):
            out = localize_run(args, backends, log) if args.localize else gate_run(args, backends, log, i)
            log(f"run {out['run']} done in {out['seconds'] / 60:.1f} min")
    except (ledger.LedgerError, protocol.ProtocolError) as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    print(summarize(load_runs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
