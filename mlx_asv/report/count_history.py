"""The history in counts: an instruction-count run over many releases
(``tools/instructions.py``'s counts.json) written as asv results of a
machine of its own, so that ``asv publish`` graphs each case's count per
release, and the steps between neighbouring releases with the function
whose own instructions changed most.

    python tools/instructions.py v0.2.0 ... v0.32.4 -b "<the main job's selection>" --out RUN
    mlx-asv count-history RUN --machine valgrind-x86-64 --out results-reference/valgrind-x86-64

The results are those ``asv run -b "^work\\."`` records for each release
(``work.<Family>.track_instructions``, unit "instructions", the same
benchmark versions, found by asv's own discovery), written through asv's
own ``Results`` API: one file a release, filed under the release's ledger
commit. A count is deterministic for what decides it (the MLX build, NumPy,
Python, valgrind, the CPU, the case's code: ``benchmarks/lib/counting.py``'s
identity), so the machine's name says the CPU and the folder's README the
rest, and ``count-steps.txt`` (JSON) beside them lists the steps past the work verdict's
threshold, which the site's regressions page keeps
(mlx_asv/report/regressions.py).
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from benchmarks.lib import callgrind, counting
from mlx_asv import cli
from mlx_asv.decide import verdicts as vd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Not *.json: asv reads every .json file of a machine's results folder as a
# results file ("No version specified in .../steps.json", four times an
# `asv publish`). The content is JSON.
STEPS_FILE = "count-steps.txt"
OLD_STEPS_FILE = "steps.json"  # what count-history wrote before 2026-12-07
# asv files results under an environment name; this one says where they come from.
ENV_NAME = "valgrind-counts"


class HistoryError(Exception):
    """A run that cannot be written: one line naming the fix."""


def work_benchmarks(root=os.path.join(ROOT, "benchmarks")):
    """{name: asv's benchmark dict} of the ``work.`` benchmarks, by asv's own
    discovery (the versions asv run would record)."""
    from asv_runner.discovery import disc_benchmarks

    out = {}
    for b in disc_benchmarks(root):
        if b.name.startswith("work."):
            out[b.name] = {"name": b.name, "version": b.version, "params": b.params,
                           "param_names": b.param_names}
    return out


def results_of(counts, benchmarks):
    """{benchmark name: [value per parameter combination]} of one release's
    counts ({case key: {"counts": [...]} | {"skip"/"error": ...}}): a count
    where there is one, None (asv: failed or not run) elsewhere."""
    got = {counting.work_key(key): row["counts"][0] for key, row in counts.items() if row.get("counts")}
    out = {}
    for name, bench in benchmarks.items():
        labels, backends = bench["params"]
        values = [got.get(f"{name}({lab}, {be})") for lab in labels for be in backends]
        if any(v is not None for v in values):
            out[name] = values
    return out


def env_identity(commit, calls):
    """What decides the counts of the counting environment tools/instructions.py
    made for ``commit`` (its identity), or {"error": why} where it is gone."""
    from mlx_asv.decide import instructions

    python = os.path.join(instructions.HOME, "envs", commit[:12], "bin", "python")
    if not os.path.exists(python):
        return {"error": f"no counting environment {python}"}
    try:
        # read now, not when counted: the code digest is today's files'
        return dict(counting.identity_of(python, calls), read="after the run")
    except counting.CountingError as e:
        return {"error": str(e)}


def commit_date_ms(commit, repo=os.path.join(ROOT, "ledger")):
    proc = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%ct", commit], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise HistoryError(f"the ledger has no commit {commit[:10]} (python tools/ledger.py first)")
    return int(proc.stdout.strip()) * 1000


def steps(run, top=1, known=None):
    """The steps of ``run`` (counts.json's dict, its releases in order) past the
    work verdict's threshold, each case between the neighbouring releases that
    have a count of it: [{key, base, cand, verdict, ratio, base_count,
    cand_count, function, function_base, function_cand}], the function being
    the one whose own instructions changed most. Where one side's functions
    are not in ``run`` (a release kept from a reference set, whose asv results
    hold only the count), the function is the one ``known`` (an earlier
    steps file's {(key, base commit, cand commit): step}) names for that pair,
    else None."""
    names, counts = run["names"], run["counts"]
    commits = dict(zip(names, run["commits"]))
    known = known or {}
    out = []
    for key in sorted({k for name in names for k in counts.get(name, {})}):
        have = [n for n in names if (counts.get(n, {}).get(key) or {}).get("counts")]
        for a, b in zip(have, have[1:]):
            ca, cb = counts[a][key]["counts"], counts[b][key]["counts"]
            v = vd.decide_counts(key, ca, cb)
            if v.verdict not in (vd.SLOWER, vd.FASTER):
                continue
            fa, fb = counts[a][key].get("functions"), counts[b][key].get("functions")
            step = {"key": key, "base": a, "cand": b, "base_commit": commits[a], "cand_commit": commits[b],
                    "verdict": vd.work_word(v.verdict), "ratio": round(v.ratio, 4), "base_count": ca[0],
                    "cand_count": cb[0], "function": None, "function_base": None, "function_cand": None}
            if fa is not None and fb is not None:
                moved = callgrind.function_changes(fa, fb, top=top)
                if moved:  # a function missing on one side has None there, as before
                    fn, nb, nc = moved[0]
                    step.update(function=fn, function_base=nb or None, function_cand=nc or None)
            else:
                old = known.get((key, commits[a], commits[b]))
                if old:
                    step.update({k: old.get(k) for k in ("function", "function_base", "function_cand")})
            out.append(step)
    return sorted(out, key=lambda s: (names.index(s["base"]), s["key"]))


def load_run(run_dir):
    path = os.path.join(run_dir, "counts.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise HistoryError(f"{path} can't be read ({type(e).__name__}: {e}): count the releases first "
                           f"(python tools/instructions.py V1 V2 ... --out {run_dir})") from e


def combined(runs):
    """Several runs as one: each release's cases from every run (a later run's
    count of a case wins), the steps of each run between its own neighbours."""
    names, commits, counts, identities, left = [], {}, {}, {}, {}
    for run in runs:
        for name, commit in zip(run["names"], run["commits"]):
            if name not in commits:
                names.append(name)
                commits[name] = commit
            counts.setdefault(name, {}).update(run["counts"].get(name, {}))
        identities.update(run.get("identities", {}))
        left.update(run.get("left_out", {}))
    return {"names": names, "commits": [commits[n] for n in names], "calls": runs[0].get("calls", 1),
            "counts": counts, "identities": identities, "left_out": left}


def release_name(commit, repo=os.path.join(ROOT, "ledger")):
    """The ledger commit's release ("MLX v0.32.4" -> "v0.32.4"), else its short hash."""
    proc = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%s", commit], capture_output=True, text=True)
    subject = proc.stdout.strip() if proc.returncode == 0 else ""
    words = subject.split()
    # a release's subject is "MLX <tag>"; a candidate's or a source commit's says more
    return words[1] if len(words) == 2 and words[0] == "MLX" else commit[:10]


def readme_commands(path):
    """The count-history commands a set's README names (a steps file before
    2026-12-07 did not keep them)."""
    try:
        with open(path, encoding="utf-8") as f:
            return re.findall(r"`(mlx-asv count-history [^`]*)`", f.readline())
    except OSError:
        return []


def stored(out_dir, repo=os.path.join(ROOT, "ledger"), case_keys=None):
    """The reference set already in ``out_dir`` as a run (counts.json's dict,
    its counts read back from the asv results: no functions) and the steps of
    its steps file, {(key, base commit, cand commit): step}, whose functions
    name the steps that stay between neighbours."""
    from asv.results import Results

    if case_keys is None:
        from mlx_asv.decide import instructions
        case_keys = [c[0] for c in instructions.cases()]
    case_of = {counting.work_key(k): k for k in case_keys}
    run = {"names": [], "commits": [], "calls": 1, "counts": {}, "identities": {}, "left_out": {}}
    unknown = 0
    files = sorted(f for f in os.listdir(out_dir) if f.endswith(".json") and f != "machine.json") \
        if os.path.isdir(out_dir) else []
    for fname in files:
        path = os.path.join(out_dir, fname)
        try:
            res = Results.load(path)
        except Exception as e:  # noqa: BLE001 - asv raises several kinds for a bad file
            raise HistoryError(f"{path} can't be read as asv results ({type(e).__name__}: {e}): restore it "
                               f"(git checkout {path}) or write the set without --onto") from e
        name = release_name(res.commit_hash, repo)
        rows = {}
        for bench in res.get_all_result_keys():
            params = res.get_result_params(bench)
            for combo, value in zip(itertools.product(*params), res.get_result_value(bench, params)):
                key = case_of.get(f"{bench}({', '.join(combo)})")
                if value is None:
                    continue
                if key is None:
                    unknown += 1
                else:
                    rows[key] = {"counts": [value]}
        run["names"].append(name)
        run["commits"].append(res.commit_hash)
        run["counts"][name] = rows
    known = {}
    path = os.path.join(out_dir, STEPS_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise HistoryError(f"{path} is unreadable ({type(e).__name__}: {e}): restore it "
                               f"(git checkout {path}) or write the set without --onto") from e
        run["identities"] = {n: i for n, i in data.get("identities", {}).items() if n in run["counts"]}
        known = {(s["key"], s["base_commit"], s["cand_commit"]): s for s in data.get("steps", [])}
        run["commands"] = data.get("commands") or readme_commands(os.path.join(out_dir, "README.md"))
    if unknown:
        print(f"count-history: {unknown} count(s) of {out_dir} are of cases this checkout no longer has; "
              f"left out", file=sys.stderr)
    return run, known


def write(run_dirs, machine, out_dir, benchmarks=None, repo=os.path.join(ROOT, "ledger"), onto=False):
    """Write the counts of ``run_dirs`` (one or more tools/instructions.py
    runs) as asv results of ``machine`` into ``out_dir`` (machine.json, a file
    a release, count-steps.txt, README.md). -> (releases written, steps).

    ``onto``: the set already in ``out_dir`` is kept, the runs' releases added
    to it (a release counted again replaced), and the steps found again
    between the neighbouring releases of the whole set, in the ledger's
    order."""
    from asv.results import Results
    from asv.runner import BenchmarkResult

    run_dirs = [run_dirs] if isinstance(run_dirs, str) else list(run_dirs)
    runs = [load_run(d) for d in run_dirs]
    for one, d in zip(runs, run_dirs):
        ids = one.setdefault("identities", {})
        for name, commit in zip(one["names"], one["commits"]):
            if name not in ids:  # a run from before counts.json kept them
                ids[name] = env_identity(commit, one.get("calls", 1))
    known = {}
    if onto:
        kept, known = stored(out_dir, repo)
        run = combined([kept] + runs)
    else:
        run = combined(runs)
    # the ledger's order (release dates), whatever order the runs gave
    order = sorted(zip(run["names"], run["commits"]), key=lambda nc: commit_date_ms(nc[1], repo))
    run["names"], run["commits"] = [n for n, _ in order], [c for _, c in order]
    this = (f"mlx-asv count-history {' '.join(os.path.basename(d.rstrip(os.sep)) for d in run_dirs)} "
            f"--machine {machine}" + (" --onto" if onto else ""))
    run["commands"] = (kept.get("commands", []) if onto else []) + [this]
    benchmarks = benchmarks or work_benchmarks()
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "machine.json"), "w", encoding="utf-8") as f:
        json.dump({"machine": machine, "version": 1}, f, indent=4)
    identities = run["identities"]
    written = []
    for name, commit in zip(run["names"], run["commits"]):
        values = results_of(run["counts"].get(name, {}), benchmarks)
        if not values:
            continue
        ident = identities.get(name, {})
        python = ident.get("python", "")
        # No requirements: asv draws one graph a combination of them, and the
        # MLX release is the x-axis (the ledger commit), not a graph of its own.
        res = Results({"machine": machine, "python": python}, {}, commit,
                      commit_date_ms(commit, repo), python, ENV_NAME, {})
        for bench_name, vals in sorted(values.items()):
            n = len(vals)
            res.add_result(benchmarks[bench_name],
                           BenchmarkResult(result=vals, samples=[None] * n, number=[None] * n, errcode=0,
                                           stderr="", profile=None),
                           started_at=datetime.datetime.now(datetime.timezone.utc), duration=0.0)
        with tempfile.TemporaryDirectory() as tmp:  # asv saves under <dir>/<machine>/
            res.save(tmp)
            for fname in os.listdir(os.path.join(tmp, machine)):
                shutil.move(os.path.join(tmp, machine, fname), os.path.join(out_dir, fname))
        written.append(name)
    found = steps(run, known=known)
    with open(os.path.join(out_dir, STEPS_FILE), "w", encoding="utf-8") as f:
        json.dump({"machine": machine, "commands": run["commands"], "identities": identities, "steps": found},
                  f, indent=1)
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme(run, machine, written, found))
    return written, found


def readme(run, machine, written, found):
    """The reference set's README: what decided its counts, the releases, the steps."""
    idents = [i for i in run.get("identities", {}).values() if "error" not in i]
    same = {k: v for k, v in (idents[0].items() if idents else ()) if all(i.get(k) == v for i in idents)}
    commands = run["commands"]  # write's: the set's earlier ones, then this one
    lines = [f"Instruction counts of one call (valgrind's callgrind: a call of the callable asv times after its "
             f"warm-up, the one benchmarks/lib/count_child.py of the code digest below counts) of "
             f"every `mlx_cpu` case counted, as asv results of the machine `{machine}`, written by "
             + ", then ".join(f"`{c}`" for c in commands)
             + " from runs of `python tools/instructions.py RELEASES -b SELECTION` (their releases below).", "",
             "What decided the counts, the same for every release: "
             + ", ".join(f"{k} {v}" for k, v in sorted(same.items()) if k not in ("mlx", "mlx_build", "codes")) + "."]
    ids = run.get("identities", {})
    for k in sorted({k for i in idents for k in i} - set(same) - {"mlx", "mlx_build", "codes"}):
        by = {}
        for name in written:
            by.setdefault(str(ids.get(name, {}).get(k, "?")), []).append(name)
        lines.append(f"Not the same for every release, {k}: "
                     + "; ".join(f"{v} ({', '.join(names)})" for v, names in by.items()) + ".")
    lines += ["", f"Releases ({len(written)}): {', '.join(written)}."]
    left = run.get("left_out", {})
    if left:
        lines += ["", "Left out: " + "; ".join(f"{k} ({v})" for k, v in left.items()) + "."]
    lines += ["", f"Steps between neighbouring releases past the work threshold ({len(found)}, also in {STEPS_FILE}):",
              "", "| case | releases | ratio | function that changed most (own instructions) |", "|---|---|---|---|"]
    for step in found:
        lines.append(f"| `{step['key']}` | {step['base']} -> {step['cand']} | {step['ratio']:.3f}x | "
                     f"`{(step['function'] or '?')[:120]}` ({step['function_base']} -> {step['function_cand']}) |")
    return "\n".join(lines) + "\n"


def load_steps(results_dir):
    """{(work benchmark key, base commit, cand commit): (machine, step)} from
    every machine's steps file (``STEPS_FILE``) under ``results_dir`` (the reference sets
    copied beside this machine's results)."""
    out = {}
    if not os.path.isdir(results_dir):
        return out
    for machine in sorted(os.listdir(results_dir)):
        path = os.path.join(results_dir, machine, STEPS_FILE)
        if not os.path.isfile(path):
            path = os.path.join(results_dir, machine, OLD_STEPS_FILE)
            if not os.path.isfile(path):
                continue
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            print(f"count-history: {path} is unreadable ({type(e).__name__}: {e}); its steps are left out "
                  f"(write it again with mlx-asv count-history)", file=sys.stderr)
            continue
        for step in data.get("steps", []):
            out[(counting.work_key(step["key"]), step["base_commit"], step["cand_commit"])] = (machine, step)
    return out


def step_text(step):
    """One line: ratio, verdict, the function that changed most."""
    fn = step.get("function") or "?"
    return (f"{step['ratio']:.3f}x instructions ({step['verdict']}), {step['base']} -> {step['cand']}, "
            f"most in {fn} ({step['function_base']} -> {step['function_cand']})")


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("runs", nargs="+", help="tools/instructions.py runs' folders (their counts.json)")
    ap.add_argument("--machine", required=True, help="the asv machine name the counts are filed under")
    ap.add_argument("--out", help="folder (default results-reference/MACHINE)")
    ap.add_argument("--onto", action="store_true",
                    help="keep the set already in the folder and add these runs' releases to it (a release "
                         "counted again is replaced); the steps are found again between neighbouring releases")
    args = ap.parse_args(argv)
    out = args.out or os.path.join(ROOT, "results-reference", args.machine)
    try:
        written, found = write(args.runs, args.machine, out, onto=args.onto)
    except HistoryError as e:
        print(f"count-history: {e}", file=sys.stderr)
        return 2
    print(f"count-history: {len(written)} release(s) written as asv results of {args.machine} in {out}; "
          f"{len(found)} step(s) past the work threshold in {os.path.join(out, STEPS_FILE)}")
    for step in found:
        print(f"  {step['key']}: {step_text(step)[:220]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
