#!/usr/bin/env python3
"""The gate's verdicts on interleaved rounds measured on a GPU machine (mlx_asv/gpu/gpu_rounds.py), and their error rates.

    python -m studies.gpu_verdicts DIR --base old --cand a     # old -> a: tables by verdict, A/A, MDE, power
    python -m studies.gpu_verdicts DIR                          # the A/A calibration alone
    python -m studies.gpu_verdicts DIR --base old --cand a --format json
    python -m studies.gpu_verdicts DIR --base old --cand a --measure device   # on the GPU's own seconds

``--measure time`` (the default) decides on asv's time_ benchmarks (the
host's seconds of a call); ``--measure device`` on benchmarks/device.py's
``track_device_time`` (the summed device seconds of the call's kernels, one
value a process: its fastest profiled call), which the same runs
record when the bench regex selects them (issue 27,
docs/gpu-device-measure.md).

DIR holds ``rK-LABEL.json``: the asv results file of round K of side LABEL,
one process a case (mlx_asv/gpu/gpu_rounds.py writes them; mlx_asv/gpu/gpu_asv.sh measures).
It is read into ``{case key: {label: [samples of each round]}}`` (the rounds
every side has; a round some side lacks, at the end, is left out and said so;
a round missing before a later one, or a file that is not an asv results
file, stops it with one line and exit status 2). Cases asv recorded as
failed (null) or skipped (NaN) are listed as such, never compared.

Every comparison is decided as ``tools/gate.py`` decides (its ``replay``: the
moderated t-test of mlx_asv/decide/verdicts.py on each process's fastest sample,
priors fitted per backend and time decade, the gate's stages of two rounds,
alpha / 3 for its three looks, a change confirmed by fresh rounds), with the
gate's defaults, and printed as the gate prints it (``tools/gate.py``'s
``markdown``). Then:

- **A/A**: two labels whose files record the same commit (one MLX install
  measured under two labels, ``--aa`` names another pair): every "slower" or
  "faster" between them is a false alarm; counted per comparison;
- **minimum detectable effect** of each case at 80% power, at the rounds
  measured, from the A/A comparison (as the gate computes it; median and by
  the case's duration), beside the CPU machine's (README, "Calibration");
- **power by injection**: the suite's own injection (benchmarks/common.py,
  ``stretched``) lets each timed call run as it is and then moves asv's
  clock on by exactly (factor - 1) times that call's duration, so every
  sample an injected case records is exactly factor times what it would have
  been. Multiplying the twin's recorded samples by the factor is therefore
  the same measurement, at no GPU time (the switch itself can't be reached
  from asv's "existing" environment: it needs asv's matrix). In a seeded
  random third of the A/A cases (a third of them each at 5%, 10% and 20%,
  ``--inject``; one draw per seed, ``--seeds``), the twin's samples are
  multiplied, and the share called "slower" is counted by factor and by
  duration, with any injected case called "faster".

Exit status: 0, or 2 on bad input (one line).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import statistics
import sys

from mlx_asv import cli
from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import gate as gatemod
from mlx_asv.measure import protocol
from studies.calibrate import DURATION_CLASSES, duration_class, processes_needed

FILE = re.compile(r"^r(\d+)-([A-Za-z0-9_.]+)\.json$")
INJECT = "0.05,0.10,0.20"
# The CPU machine's figure this is set beside: the median minimum detectable
# effect of the two gate runs of README "Calibration" ("new runs"), printed by
# `python studies/calibrate.py --summary` on that machine.
CPU_MDE_MEDIAN = 0.258


class ReadError(Exception):
    pass


# What a verdict is on (--measure): the host's seconds of a call (asv's time_ benchmarks, one sample
# a timed call), or the device's (benchmarks/device.py's track_device_time: one value a process, the
# fastest profiled call's device seconds; issue 27).
MEASURES = ("time", "device")
DEVICE_TRACK = "track_device_time"
# The gate's thresholds on the device measure (--measure device): its least change and its band of
# "same", where the host's time needs 2% and 10%. The device's time of a call scatters between
# processes by a median 0.3% (docs/gpu-device-measure.md), so 10% would call a 5% change "same"
# at the first look (measured: the A/A and injection figures of both settings are in the note).
DEVICE_MIN_EFFECT = 0.01
DEVICE_SAME_WITHIN = 0.02


def is_timing(key):
    """A time_ benchmark's case (tracks, e.g. ops.track_mlx_version, are not times)."""
    return key.split("(")[0].rsplit(".", 1)[-1].startswith("time_")


def is_measured(key, measure="time"):
    """Whether ``key`` is a case of ``measure`` (MEASURES)."""
    if measure == "time":
        return is_timing(key)
    if measure == "device":
        return key.split("(")[0].rsplit(".", 1)[-1] == DEVICE_TRACK
    raise ValueError(f"unknown measure {measure!r}; choose from {', '.join(MEASURES)}")


def version_of(data):
    """The MLX version ops.track_mlx_version recorded ('0.32.4'), or None."""
    for key, status, samples in protocol.case_results(data):
        if key == "ops.track_mlx_version" and status == "ok" and samples:
            n = round(samples[0] * 1e6)
            return f"{n // 1000000}.{n // 1000 % 1000}.{n % 1000}"
    return None


class Rounds:
    """The rounds of DIR: ``data[key][label]`` is the samples of each process
    in which the case has a result (as the gate's session keeps them),
    ``status[key][label]`` the status of each round ('ok', 'failed',
    'skipped', 'absent').

    A run is one process a case (gpu_rounds.py runs asv with one round)
    unless DIR's ``asv_rounds.json`` (``{"rK-LABEL": N, ...}``) says that
    run's asv made N rounds: then asv ran every case in N processes, one
    after the other over the whole run, and concatenated their samples; each
    case's list is cut into N equal parts, one per process (a count that N
    does not divide stops it with one line). The processes of a side are
    listed run by run within each of asv's rounds (round 1's process of
    every run, then round 2's, ...), so the gate's first stage holds
    processes of every run."""

    def __init__(self, folder, measure="time"):
        self.folder = folder
        self.measure = measure
        found = {}
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            m = FILE.match(name)
            if m:
                found.setdefault(m.group(2), {})[int(m.group(1))] = os.path.join(folder, name)
        if not found:
            raise ReadError(f"no round files (rK-LABEL.json) in {folder}")
        for label, by_round in found.items():
            gaps = [k for k in range(1, max(by_round) + 1) if k not in by_round]
            if gaps:
                raise ReadError(f"round {gaps[0]} of side {label} is missing "
                                f"({os.path.join(folder, f'r{gaps[0]}-{label}.json')}) but round "
                                f"{max(by_round)} is there")
        self.asv_rounds = self._asv_rounds()
        self.labels = sorted(found)
        self.rounds = min(max(by_round) for by_round in found.values())
        self.left_out = sorted(os.path.basename(p) for by_round in found.values()
                               for k, p in by_round.items() if k > self.rounds)
        self.commits, self.versions = {}, {}
        self.data, self.status, runs = {}, {}, {}
        self.processes = {label: sum(self.asv_rounds.get(f"r{k}-{label}", 1) for k in range(1, self.rounds + 1))
                          for label in self.labels}
        for label in self.labels:
            for k in range(1, self.rounds + 1):
                self._read(label, k, found[label][k], runs)
        for key, per in runs.items():
            for label, by_run in per.items():
                self.data.setdefault(key, {})[label] = [procs[i] for i in range(max(map(len, by_run)))
                                                        for procs in by_run if i < len(procs)]
        self.walls = self._walls()
        for key, per in self.status.items():
            for label in self.labels:
                per.setdefault(label, [])
                per[label] += ["absent"] * (self.rounds - len(per[label]))

    def _asv_rounds(self):
        path = os.path.join(self.folder, "asv_rounds.json")
        if not os.path.exists(path):
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                got = {k: v for k, v in json.load(f).items() if FILE.match(k + ".json")}
            if not all(isinstance(v, int) and v >= 1 for v in got.values()):
                raise ValueError("a run's asv rounds must be a whole number >= 1")
        except (OSError, ValueError, AttributeError) as e:
            raise ReadError(f"{path} is not a map of rK-LABEL to asv's rounds ({type(e).__name__}: {e})") from None
        return got

    def _read(self, label, k, path, runs):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            commit = data["commit_hash"]
            if not isinstance(data["results"], dict) or not isinstance(data["result_columns"], list):
                raise TypeError("results is not a table")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ReadError(f"{path} is not an asv results file ({type(e).__name__}: {e})") from None
        if self.commits.setdefault(label, commit) != commit:
            raise ReadError(f"{path} records commit {commit[:8]}, the earlier rounds of side {label} "
                            f"{self.commits[label][:8]}: one side is one install")
        self.versions.setdefault(label, version_of(data))
        parts = self.asv_rounds.get(f"r{k}-{label}", 1)
        for key, status, samples in protocol.case_results(data):
            if not is_measured(key, self.measure):
                continue
            st = self.status.setdefault(key, {}).setdefault(label, [])
            st += ["absent"] * (k - 1 - len(st)) + [status]
            if status != "ok":
                continue
            if len(samples) % parts:
                raise ReadError(f"{path}: {key} has {len(samples)} samples, which {parts} processes "
                                f"(asv_rounds.json) can't have given in equal parts")
            size = len(samples) // parts
            runs.setdefault(key, {}).setdefault(label, []).append(
                [samples[i * size:(i + 1) * size] for i in range(parts)])

    def _walls(self):
        """{label: seconds its runs took}, and the seconds of each run per process a case (its wall over
        its asv rounds), from mlx_asv/gpu/gpu_rounds.py's rounds.log (none where there is no log)."""
        walls, self.pass_seconds = {}, []
        try:
            with open(os.path.join(self.folder, "rounds.log"), encoding="utf-8") as f:
                for line in f:
                    m = re.match(r"r(\d+)\t(\S+)\t.*\twall_s=([\d.]+)", line)
                    if m and int(m.group(1)) <= self.rounds:
                        walls[m.group(2)] = walls.get(m.group(2), 0.0) + float(m.group(3))
                        n = self.asv_rounds.get(f"r{m.group(1)}-{m.group(2)}", 1)
                        self.pass_seconds.append(float(m.group(3)) / n)
        except OSError:
            pass
        return walls

    def name(self, label):
        v = self.versions.get(label)
        return f"{label} (MLX {v})" if v else f"{label} ({self.commits[label][:8]})"

    def twins(self):
        """The first pair of labels whose files record the same commit, or None."""
        for i, a in enumerate(self.labels):
            for b in self.labels[i + 1:]:
                if self.commits[a] == self.commits[b]:
                    return a, b
        return None

    def failures(self, labels):
        """{key: {label: (failed rounds, skipped rounds)}} of the cases that
        did not run in some round on one of ``labels``."""
        out = {}
        for key, per in sorted(self.status.items()):
            if all(st == "skipped" for lb in labels for st in per[lb]):
                continue  # a case this run did not select (another backend): not a failure
            bad = {lb: (per[lb].count("failed"), per[lb].count("skipped")) for lb in labels}
            if any(f or s for f, s in bad.values()):
                out[key] = bad
        return out


def device_observation(per_call):
    """A process's device value as benchmarks/device.py's track records it (its ``observation``)."""
    from benchmarks import device

    return device.observation(per_call)


STUDY_FILE = re.compile(r"^measure-([A-Za-z0-9_.]+)-r(\d+)\.jsonl$")


class StudyRounds(Rounds):
    """The processes of studies/device_study.py's ``measure`` (``--study``): ``measure-LABEL-rK.jsonl``
    is process K of side LABEL, one JSON line a (case, backend). The same data as :class:`Rounds`
    gives: ``--measure device`` takes each process's fastest call's device time of a case (the value
    benchmarks/device.py records; a ``--all`` row where the process has one), ``--measure time``
    its wall samples (the host's seconds of a call, mlx_asv/gpu/timing.py's rule). A side is one MLX
    release (its ``mlx`` field); a row with an error is a failed case."""

    def __init__(self, folder, measure="time"):
        self.folder, self.measure = folder, measure
        found = {}
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            m = STUDY_FILE.match(name)
            if m:
                found.setdefault(m.group(1), {})[int(m.group(2))] = os.path.join(folder, name)
        if not found:
            raise ReadError(f"no study files (measure-LABEL-rK.jsonl) in {folder}")
        self.asv_rounds, self.left_out, self.pass_seconds, self.walls = {}, [], [], {}
        self.labels = sorted(found)
        self.rounds = min(len(v) for v in found.values())
        self.processes = {lb: len(found[lb]) for lb in self.labels}
        self.commits, self.versions, self.data, self.status = {}, {}, {}, {}
        for label, by_round in found.items():
            for k in sorted(by_round):
                self._read_study(label, by_round[k])

    def _read_study(self, label, path):
        rows = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    key = self._key(r)
                except (ValueError, KeyError, TypeError) as e:
                    raise ReadError(f"{path}: not a device_study row ({type(e).__name__}: {e})") from None
                if key is None:
                    continue
                if self.versions.setdefault(label, r.get("mlx")) != r.get("mlx"):
                    raise ReadError(f"{path} measured MLX {r.get('mlx')}, side {label}'s other processes "
                                    f"{self.versions[label]}: one side is one install")
                if key not in rows or r.get("all"):
                    rows[key] = r
        self.commits.setdefault(label, f"mlx-{self.versions.get(label)}")
        for key, r in rows.items():
            st = self.status.setdefault(key, {}).setdefault(label, [])
            if "error" in r:
                st.append("failed")
                continue
            st.append("ok")
            samples = [device_observation(r["device"])] if self.measure == "device" else list(r["wall"])
            self.data.setdefault(key, {}).setdefault(label, []).append(samples)

    def _key(self, r):
        if self.measure == "device":
            if "device" not in r and "error" not in r:
                return None
            return f"device.{r['case']}.track_device_time('{r['label']}', '{r['backend']}')"
        if r.get("all") or ("wall" not in r and "error" not in r):
            return None
        return f"ops.{r['case']}.time_op('{r['label']}', '{r['backend']}')"


def compare(data, base, cand, names=None, min_effect=vd.MIN_EFFECT, same_within=vd.SAME_WITHIN):
    """The gate's report (tools/gate.py's as_json form) of base -> cand over
    the cases both sides have results for, decided by its ``replay``."""
    sub = {k: {base: per[base], cand: per[cand]} for k, per in data.items() if per.get(base) and per.get(cand)}
    results = gatemod.replay(sub, base, cand, min_effect=min_effect, same_within=same_within)
    cases = gatemod.case_rows(results, sub, base, cand, min_effect=min_effect)
    names = names or {}
    stages = max((len(gatemod.stages_of(max(len(v) for v in per.values()))) for per in sub.values()), default=0)
    return {"base": base, "candidate": cand, "base_name": names.get(base, base),
            "candidate_name": names.get(cand, cand), "alpha": vd.ALPHA, "min_effect": min_effect,
            "same_within": same_within, "stages": min(stages, 3),
            # the gate's rounds: processes a side (as many as its looks used)
            "rounds": max((max(c["processes"]) for c in cases), default=0), "seconds": 0.0,
            "summary": vd.summary(results.values()), "over_budget": {}, "cases": cases}


def inject(data, label, keys, factors, seed):
    """(data with ``label``'s samples of a seeded random third of ``keys``
    multiplied by a factor, {key: factor}): the factors in turn over the
    chosen cases, as studies/calibrate.py assigns them. ``data`` is not changed."""
    rng = random.Random(seed)
    keys = sorted(keys)
    chosen = rng.sample(keys, len(keys) // 3)
    injected = {k: factors[i % len(factors)] for i, k in enumerate(chosen)}
    out = {}
    for key, per in data.items():
        f = injected.get(key)
        out[key] = {lb: ([[x * f for x in run] for run in runs] if f and lb == label else runs)
                    for lb, runs in per.items()}
    return out, injected


def mde_table(cases):
    """(median MDE, {duration class: (median, cases)}) of report rows."""
    rows = [c for c in cases if c["mde"] is not None and c["mde"] == c["mde"]]
    by = {}
    for c in rows:
        by.setdefault(duration_class(c["base_s"]), []).append(c["mde"])
    med = statistics.median([c["mde"] for c in rows]) if rows else math.nan
    return med, {label: (statistics.median(by[label]), len(by[label])) for _, _, label in DURATION_CLASSES
                 if label in by}


def power(data, base, twin, factors, seeds, **thresholds):
    """Per seed, the A/A comparison with the twin's samples of a random third
    of the cases multiplied (:func:`inject`): [(key, factor, verdict, base_s)]
    of the injected cases over all seeds."""
    keys = [k for k, per in data.items() if per.get(base) and per.get(twin)]
    rows = []
    for seed in seeds:
        injected_data, injected = inject(data, twin, keys, factors, seed)
        report = compare(injected_data, base, twin, **thresholds)
        for c in report["cases"]:
            if c["key"] in injected:
                rows.append((c["key"], injected[c["key"]], c["verdict"], c["base_s"]))
    return rows


def spread(data, a, b):
    """The median over the A/A cases of a process's spread (the standard deviation of the log of its
    fastest sample, pooled over both twins), and the processes a side that +20% and +10% need at that
    spread to be called slower with 80% power at the gate's level (studies/calibrate.py's processes_needed)."""
    sds = []
    for per in data.values():
        if per.get(a) and per.get(b):
            v, d = vd.pooled([vd.process_observations(per[a]), vd.process_observations(per[b])])
            if v is not None and d:
                sds.append(math.sqrt(v))
    if not sds:
        return {"cases": 0}
    sd = statistics.median(sds)
    need = {f"{effect:.2f}": processes_needed(sd, effect, 0.8, vd.ALPHA / 3, vd.MIN_EFFECT) for effect in (0.2, 0.1)}
    return {"cases": len(sds), "sd_median": sd, "processes_80pct": need}


def budget_mde(data, a, b, min_effect=vd.MIN_EFFECT):
    """The median minimum detectable effect of the A/A cases at every process measured (the whole
    budget, where the gate's replay stops a case at the first stage that decides it), at the gate's
    level (alpha / 3 for its three looks), from :func:`vd.decide` on all processes of each side."""
    keys = sorted(k for k, per in data.items() if per.get(a) and per.get(b))
    comps = [vd.Comparison(k, data[k][a], data[k][b], group=vd.prior_group(backend_of(k), data[k][a])) for k in keys]
    got = [v.minimum_detectable_effect(alpha=vd.ALPHA / 3, min_effect=min_effect)
           for v in vd.decide(comps, alpha=vd.ALPHA / 3, min_effect=min_effect)]
    got = [m for m in got if m == m]
    return statistics.median(got) if got else math.nan


def backend_of(key):
    """The backend of a case's asv name (its last parameter), as the gate groups its priors."""
    return key.rsplit("'", 2)[-2] if key.endswith("')") else ""


def analyse(rounds, base=None, cand=None, aa=None, factors=None, seeds=(1, 2, 3, 4, 5),
            min_effect=vd.MIN_EFFECT, same_within=vd.SAME_WITHIN):
    th = dict(min_effect=min_effect, same_within=same_within)
    names = {lb: rounds.name(lb) for lb in rounds.labels}
    out = {"folder": rounds.folder, "measure": getattr(rounds, "measure", "time"),
           "study": isinstance(rounds, StudyRounds), "rounds": rounds.rounds, "left_out": rounds.left_out,
           "pass_seconds_median": statistics.median(rounds.pass_seconds) if rounds.pass_seconds else None,
           "asv_rounds": rounds.asv_rounds,
           "sides": {lb: {"commit": rounds.commits[lb], "version": rounds.versions.get(lb),
                          "processes": rounds.processes[lb]} for lb in rounds.labels}}
    for lb in (base, cand) + tuple(aa or ()):
        if lb is not None and lb not in rounds.labels:
            raise ReadError(f"no side {lb!r} in {rounds.folder} (sides: {', '.join(rounds.labels)})")
    if base and cand:
        out["comparison"] = compare(rounds.data, base, cand, names, **th)
        out["comparison"]["seconds"] = sum(rounds.walls.get(lb, 0.0) for lb in (base, cand))
        out["failures"] = rounds.failures([base, cand])
    aa = tuple(aa) if aa else rounds.twins()
    if aa:
        a, b = aa
        if rounds.commits[a] != rounds.commits[b]:
            raise ReadError(f"--aa {a},{b}: they record different commits ({rounds.commits[a][:8]}, "
                            f"{rounds.commits[b][:8]}), so they are not one install")
        report = compare(rounds.data, a, b, names, **th)
        med, by = mde_table(report["cases"])
        factors = factors or [1.0 + float(x) for x in INJECT.split(",")]
        out["aa"] = {"pair": [a, b], "comparisons": len(report["cases"]), "summary": report["summary"],
                     "alarms": [c for c in report["cases"] if c["verdict"] in (vd.SLOWER, vd.FASTER)],
                     "mde_median": med, "mde_by_duration": by, "cpu_mde_median": CPU_MDE_MEDIAN,
                     "mde_budget_median": budget_mde(rounds.data, a, b, min_effect),
                     "processes_measured": f"{rounds.processes[a]}+{rounds.processes[b]}",
                     "spread": spread(rounds.data, a, b),
                     "mde_cases": {c["key"]: c["mde"] for c in report["cases"]},
                     "processes": "+".join(str(int(statistics.median(c["processes"][i] for c in report["cases"])))
                                           for i in (0, 1)) if report["cases"] else "0+0",
                     "power": [dict(key=k, factor=f, verdict=v, base_s=s)
                               for k, f, v, s in power(rounds.data, a, b, factors, seeds, **th)],
                     "seeds": list(seeds)}
    return out


def run_cell(bad, rounds):
    """'failed 4 of 4', 'skipped 4 of 4', 'ran' for one side of a case."""
    failed, skipped = bad
    parts = [f"failed {failed} of {rounds}"] if failed else []
    parts += [f"skipped {skipped} of {rounds}"] if skipped else []
    return ", ".join(parts) or "ran"


def pct(x):
    return f"{100 * x:.1f}%" if x is not None and x == x else "n/a"


def markdown(out):
    lines = [f"# Interleaved rounds in {out['folder']}" + (f" (measure: {out['measure']})" if out.get("measure") else ""), "",
             f"{out['rounds']} rounds a side ("
             + ("processes of studies/device_study.py" if out.get("study") else "runs of gpu_asv.sh")
             + ", the sides' order alternating), sides: " + ", ".join(
                 f"{lb} = MLX {s['version'] or '?'} ({s['commit'][:8]}, {s['processes']} processes a case)"
                 for lb, s in out["sides"].items())]
    if out["asv_rounds"]:
        lines.append("asv made several processes a case in these runs (asv_rounds.json): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(out["asv_rounds"].items())))
    if out.get("pass_seconds_median"):
        lines.append(f"A run took {out['pass_seconds_median']:.0f} s per process a case (median over the runs "
                     f"of rounds.log: wall / asv rounds)")
    if out["left_out"]:
        lines.append(f"Left out (their round is incomplete): {', '.join(out['left_out'])}")
    if "comparison" in out:
        text = gatemod.markdown(out["comparison"]).rstrip()
        if out["asv_rounds"]:
            n = out["comparison"]["rounds"]
            text = text.replace(f"; {n} interleaved rounds in ",
                                f"; up to {n} processes a side from {out['rounds']} interleaved runs, in ", 1)
        lines += ["", text]
        fails = out["failures"]
        if fails:
            base, cand = out["comparison"]["base"], out["comparison"]["candidate"]
            lines += ["", f"## Did not run: failed or skipped in some round ({len(fails)})", "",
                      f"| {base} | {cand} | benchmark |", "|---|---|---|"]
            for key, bad in fails.items():
                lines.append(f"| {run_cell(bad[base], out['rounds'])} | {run_cell(bad[cand], out['rounds'])} "
                             f"| {key} |")
    aa = out.get("aa")
    if aa:
        a, b = aa["pair"]
        s = aa["summary"]
        lines += ["", f"## A/A: {a} against {b} (one install under two labels)", "",
                  f"- false alarms: {len(aa['alarms'])} of {aa['comparisons']} comparisons "
                  f"({pct(len(aa['alarms']) / max(aa['comparisons'], 1))}); same {s['same']}, "
                  f"undecided {s['undecided']}"]
        for c in aa["alarms"]:
            lines.append(f"  - {c['verdict']}: {c['key']} ratio {c['ratio']:.3f} ({c['lo']:.3f}-{c['hi']:.3f})")
        lines += [f"- minimum detectable effect at 80% power, at the processes the gate used "
                  f"({aa['processes']} a side, median), as it computes it: median {pct(aa['mde_median'])} "
                  f"over {len(aa['mde_cases'])} cases "
                  f"(the CPU machine's: {pct(aa['cpu_mde_median'])}, README \"Calibration\")", "",
                  f"- at every process measured ({aa['processes_measured']} a side), the whole budget: median MDE "
                  f"{pct(aa['mde_budget_median'])}", "",
                  "| case duration | cases | median MDE |", "|---|---|---|"]
        for label, (m, n) in aa["mde_by_duration"].items():
            lines.append(f"| {label} | {n} | {pct(m)} |")
        sp = aa["spread"]
        if sp["cases"]:
            need = sp["processes_80pct"]
            lines += ["", f"- a process's spread (standard deviation of the log of its fastest sample, both "
                          f"twins pooled): median {pct(sp['sd_median'])} over {sp['cases']} cases; at that "
                          f"spread +20% needs {need['0.20']} and +10% {need['0.10']} processes a side to be "
                          f"called slower with 80% power at the gate's level"]
        rows = aa["power"]
        if rows:
            factors = sorted({r["factor"] for r in rows})
            lines += ["", f"## Power: the twin's samples multiplied in a random third of the cases "
                          f"(seeds {', '.join(map(str, aa['seeds']))}), share called slower", "",
                      "| case duration | " + " | ".join(f"+{100 * (f - 1):.0f}%" for f in factors) + " |",
                      "|---|" + "---|" * len(factors)]
            for label in [lb for _, _, lb in DURATION_CLASSES] + ["all >= 1 ms", "all"]:
                cells = []
                for f in factors:
                    sel = [r for r in rows if r["factor"] == f and (
                        label == "all" or duration_class(r["base_s"]) == label or
                        (label == "all >= 1 ms" and (r["base_s"] or 0) >= 1e-3))]
                    hit = sum(1 for r in sel if r["verdict"] == vd.SLOWER)
                    cells.append(f"{hit}/{len(sel)}" + (f" ({100 * hit / len(sel):.0f}%)" if sel else ""))
                if any(not c.startswith("0/0") for c in cells):
                    lines.append(f"| {label} | " + " | ".join(cells) + " |")
            wrong = [r for r in rows if r["verdict"] == vd.FASTER]
            lines += ["", f"Injected slowdowns called faster: {len(wrong)} of {len(rows)}"
                      + "".join(f"; {r['key']} (+{100 * (r['factor'] - 1):.0f}%)" for r in wrong) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("folder", help="the rounds' results files, rK-LABEL.json (mlx_asv/gpu/gpu_rounds.py --out)")
    ap.add_argument("--base", help="label of the base side")
    ap.add_argument("--cand", help="label of the candidate side")
    ap.add_argument("--aa", help="LABEL,LABEL: the A/A pair (default: two labels of one commit)")
    ap.add_argument("--inject", default=INJECT, help="slowdowns injected into the twin (default %(default)s)")
    ap.add_argument("--seeds", type=int, default=5, help="random thirds drawn, seeds 1..N (default %(default)s)")
    ap.add_argument("--measure", choices=MEASURES, default="time",
                    help="time: asv's time_ benchmarks (the host's view of a call); device: "
                         "benchmarks/device.py's track_device_time (the GPU's own seconds); default %(default)s")
    ap.add_argument("--min-effect", type=float, help="the gate's least change called slower or faster "
                    f"(default {vd.MIN_EFFECT:g}, and {DEVICE_MIN_EFFECT:g} with --measure device)")
    ap.add_argument("--same-within", type=float, help="the gate's band of 'same' (default "
                    f"{vd.SAME_WITHIN:g}, and {DEVICE_SAME_WITHIN:g} with --measure device)")
    ap.add_argument("--study", action="store_true",
                    help="FOLDER holds studies/device_study.py measure processes (measure-LABEL-rK.jsonl), "
                         "not asv round files")
    ap.add_argument("--format", choices=("md", "json"), default="md")
    args = ap.parse_args(argv)
    if bool(args.base) != bool(args.cand):
        print("gpu_verdicts: give both --base and --cand, or neither", file=sys.stderr)
        return 2
    try:
        aa = args.aa.split(",") if args.aa else None
        if aa is not None and len(aa) != 2:
            raise ReadError(f"--aa takes two labels, LABEL,LABEL, not {args.aa!r}")
        factors = [1.0 + float(x) for x in args.inject.split(",")]
        dev = args.measure == "device"
        th = dict(min_effect=args.min_effect if args.min_effect is not None else
                  (DEVICE_MIN_EFFECT if dev else vd.MIN_EFFECT),
                  same_within=args.same_within if args.same_within is not None else
                  (DEVICE_SAME_WITHIN if dev else vd.SAME_WITHIN))
        out = analyse((StudyRounds if args.study else Rounds)(args.folder, args.measure), args.base, args.cand, aa,
                      factors, range(1, args.seeds + 1), **th)
    except (ReadError, ValueError) as e:
        print(f"gpu_verdicts: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1) if args.format == "json" else markdown(out), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
