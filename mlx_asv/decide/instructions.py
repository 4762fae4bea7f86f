#!/usr/bin/env python3
r"""Instruction counts: does CANDIDATE make a case do more work than BASE, and in which functions?

    python tools/instructions.py v0.22.0 v0.22.1 -b "^ops\.Softmax\."
    python tools/instructions.py v0.29.0..v0.30.0 -b "^ops\.Sigmoid\..*'mlx_cpu'"    # every release of a range
    python tools/instructions.py v0.32.4 candidate/my-pr -b "^ops\.LayerNorm\." --format json
    python tools/instructions.py --power .asv/instructions/<run>       # an A/A run, slowdowns injected
    python tools/instructions.py --show .asv/instructions/<run>        # a finished run's verdicts again
    python tools/instructions.py v0.32.3 v0.32.4 -b "..." --cache-sim   # and the caches' misses, as valgrind simulates them
    python tools/instructions.py v0.32.3 v0.32.4 -b "..." --branch-sim  # and the branches it mispredicts
    python tools/instructions.py v0.32.3 v0.32.4 -b "..." --annotate    # and each side's hottest machine code

Time on a shared 2-core machine spreads by a few percent between processes
of one build (README, "Calibration"), so the gate (tools/gate.py) finds a 10%
slowdown only sometimes in its 15 minutes. The number of instructions a call
executes does not depend on the machine's load: this tool counts them, with
valgrind's callgrind, for the very callables asv times (``CaseTable.callable``
of benchmarks/ops.py), on the CPU backends (``mlx_cpu``, ``torch_cpu``), and
says which functions the change is in. It answers a narrower question than
the gate: a change in the *work* done (an op that lost its vectorised path,
an extra pass over the data, a copy), not in memory traffic, page faults,
threads or the GPU, which cost time without instructions. Where the gate says
"undecided", this says whether the work changed and where.

How:
- each side (a ledger name: release tag, candidate branch, commit) gets an
  environment of its own, ``.asv/instructions/envs/<commit>``: a virtualenv
  that sees torch and NumPy from one shared environment (asv.conf.json's
  pinned versions) and has the side's MLX installed by ``tools/install.py``
  from the side's ledger commit, as asv installs it;
- one process a side (``--processes`` more) runs under
  ``valgrind --tool=callgrind --instr-atstart=no``; it builds each case,
  calls it once uninstrumented (first-call work: allocations, lazy set-up),
  then ``--calls`` times between two client requests
  (benchmarks/lib/native/callgrind_marks.c) that zero callgrind's counters and dump
  them, named after the case: every thread's instructions during the call,
  MLX's evaluation thread included. ``OMP_NUM_THREADS=1``: torch's OpenMP
  threads wait by spinning, which would add instructions that depend on
  timing; under valgrind threads run one at a time anyway;
- sides run side by side (``--jobs``, default the machine's cores): counts
  do not depend on what else runs; a case that crashes its process, or
  hangs past ``--timeout``, is recorded as failed and a new process takes
  the cases after it;
- benchmarks/lib/callgrind.py reads the dumps, reporting/verdicts.py's
  ``decide_counts`` decides: slower (more instructions), faster, same (within
  ``--min-effect``, 2%), undecided (counts that vary from call to call); for
  a changed case it lists the functions whose own instructions changed most;
- ``--cache-sim`` and ``--branch-sim`` add callgrind's simulated cache
  misses and branch mispredictions a call beside the counts; ``--annotate``
  (``--dump-instr=yes``) each case's two dearest functions' hottest
  instructions on both sides, disassembled by objdump from the side's
  library: where a time step has no more instructions, the next question is
  how the hot loop's code changed (this machine has no performance counters).

A series of three or more names compares each with the one before (counts
do not drift between runs, but this tool measures the series in one run
all the same). ``--power RUN`` takes an A/A run (a release against its twin,
``python tools/ledger.py --candidate aa --base v0.32.4 --same-as v0.32.4``,
``--processes 2``), decides it as it is, then multiplies the candidate's
counts of a seeded random third of the cases by 1.05, 1.10 and 1.20 and
decides again: the false alarms and the share of injected changes found.

Cost: valgrind runs a call 10-200 times slower than the machine (measured,
README "Instruction counts"); pick families with ``-b``. Output:
``.asv/instructions/<run>/`` (``counts.json``, ``verdicts.md``, the dumps).
Exit status: 1 if a case executes more instructions, 0 otherwise, 2 on bad
input (one line).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time

from benchmarks.lib import callgrind, counting
from mlx_asv.decide import verdicts as vd
from mlx_asv.envs import asv_config
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOME = os.path.join(ROOT, ".asv", "instructions")
# torch is pinned: between two MLX releases its cases run the same code on
# both sides (the time verdicts' A/A control), so they are never counted.
CPU_BACKENDS = ("mlx_cpu",)
DEFAULT_CALLS = 1
POWER_FACTORS = (1.02, 1.05, 1.10, 1.20)
# callgrind's simulations: the events shown beside a case, a line each
CACHE_EVENTS = (("D1mr", "first-level read misses"), ("D1mw", "write misses"),
                ("DLmr", "last-level read misses"), ("DLmw", "write misses"))
# --branch-sim: valgrind's branch predictor (a table of two-bit counters for
# conditional branches, a last-target table for indirect ones), not the CPU's
BRANCH_EVENTS = (("Bc", "conditional branches"), ("Bcm", "mispredicted"),
                 ("Bi", "indirect branches"), ("Bim", "mispredicted"))
SIMULATIONS = (("cache", "simulated caches, a call (valgrind)", CACHE_EVENTS),
               ("branch", "simulated branch prediction, a call (valgrind)", BRANCH_EVENTS))
# --annotate: a case's hottest functions' hottest instructions, disassembled.
# When time changes and the instructions do not, the machine code of the hot
# loop is where to look next (a call inlined, state kept on the stack, ...).
HOT_FUNCTIONS = 2
HOT_SHARE = 0.005  # an instruction shown if it is at least this share of its function's own
HOT_LINES = 48


InstructionsError = counting.CountingError


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------


case_key = counting.case_key


def cases(bench=None, backends=CPU_BACKENDS):
    """[(key, family, label, backend)] of the counted cases matching ``bench``
    (a regex over their asv names): ops.py's ``mlx_cpu`` cases, and with
    ``bench`` also fused_ops.py's and metal_kernels.py's CPU cases
    (``-b "^fused_ops\\..*'mlx_cpu'"``, ``-b "^metal_kernels\\."``: counting.COUNTED).
    Without ``bench``, every ops.py case, as before. A metal_kernels case's
    "backend" is its implementation (``ours_mlx_cpu``, ``mlx_linalg_cpu``),
    which runs on ``mlx_cpu``."""
    rx = re.compile(bench) if bench else None
    out = []
    if "mlx_cpu" not in backends:
        return out
    for module in (counting.COUNTED if bench else ("ops",)):
        out += [case for case in counting.cpu_cases(module) if rx is None or rx.search(case[0])]
    return out


# --------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------


def _run(cmd, what, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-1]
        raise InstructionsError(f"{what} failed: {tail}")
    return proc


def check_tools(which=None, annotate=False):
    """One line naming the fix if valgrind or a C compiler (or, to annotate, objdump) is missing."""
    which = which or shutil.which
    if annotate and not which("objdump"):
        raise InstructionsError("objdump is not installed, which --annotate disassembles with (Debian: apt install binutils)")
    counting.check_tools(which)


def marks_library(home=None):
    return counting.marks_library(home)


def _site_packages(env):
    found = _run([os.path.join(env, "bin", "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                 f"asking {env} for its site-packages")
    return found.stdout.strip()


def pinned_requirements():
    """NumPy at asv.conf.json's version: the shared environment's (an MLX case
    needs nothing else; torch is never counted)."""
    req = asv_config.load_conf()["matrix"]["req"]
    return [f"{name}=={req[name][0]}" for name in ("numpy",) if req.get(name)]


def _virtualenv(path):
    _run([sys.executable, "-m", "virtualenv", "-q", path], f"creating the virtualenv {path}")


def shared_env(home=HOME, log=print):
    """The environment with NumPy (no MLX), made once."""
    env = os.path.join(home, "envs", "shared")
    reqs = pinned_requirements()
    stamp = os.path.join(env, "mlx-asv-requirements.txt")
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().split() == reqs:
                return env
    log(f"making {os.path.relpath(env, ROOT)} with {' '.join(reqs)} (once)")
    if not os.path.exists(os.path.join(env, "bin", "python")):
        _virtualenv(env)
    _run([os.path.join(env, "bin", "python"), "-m", "pip", "install", "-q", "--no-input", *reqs],
         f"installing {' '.join(reqs)} into {env}")
    with open(stamp, "w") as f:
        f.write("\n".join(reqs) + "\n")
    return env


def checkout(commit, home=HOME):
    """The ledger commit's files (MLX_VERSION, a candidate's wheels), as asv's build dir would hold them."""
    from mlx_asv.envs import ledger

    folder = os.path.join(home, "checkouts", commit)
    if os.path.exists(os.path.join(folder, ".complete")):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    archive = subprocess.run(["git", "-C", ledger.DEFAULT_REPO, "archive", commit], capture_output=True)
    if archive.returncode != 0:
        raise InstructionsError(f"git archive {commit[:10]} of the ledger failed: "
                                f"{archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    open(os.path.join(folder, ".complete"), "w").close()
    return folder


def side_env(commit, home=HOME, log=print):
    """A virtualenv for ledger commit ``commit``: the shared NumPy, and
    that commit's MLX, installed by tools/install.py (kept when it is there)."""
    shared = shared_env(home, log=log)
    env = os.path.join(home, "envs", commit[:12])
    python = os.path.join(env, "bin", "python")
    if not os.path.exists(python):
        _virtualenv(env)
        with open(os.path.join(_site_packages(env), "_mlx_asv_shared.pth"), "w") as f:
            f.write(_site_packages(shared) + "\n")
    build_dir = checkout(commit, home)
    proc = subprocess.run([python, os.path.join(ROOT, "tools", "install.py"), "--build-dir", build_dir],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-1]
        raise InstructionsError(f"installing the MLX of {commit[:10]}: {tail}")
    log(f"{commit[:10]}: {(proc.stdout.strip().splitlines() or ['installed'])[-1]}")
    return python


# --------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------


def launch(python, todo, folder, calls, marks, cache_sim=False, branch_sim=False, annotate=False):
    """Start one counting process (``counting.launch``); ``cache_sim``,
    ``branch_sim``: callgrind also simulates the caches, the branch predictor:
    their misses per call; ``annotate``: costs by instruction address, for
    ``hot_code``."""
    extra = [*(["--cache-sim=yes"] if cache_sim else []), *(["--branch-sim=yes"] if branch_sim else []),
             *(["--dump-instr=yes"] if annotate else [])]
    return counting.launch(python, todo, folder, calls, marks, extra=extra)


def _simulations(row, dump):
    """A case's first dump's simulated events and hottest code, beside its counts."""
    if len(dump["events"]) > 1:
        row["events"] = dump["events"]
    if dump["instructions"]:
        row["hot"] = hot_code(dump)


def read_process(folder):
    """{key: {"counts": [...], "functions": {...}} or {"skip"|"error": why}} of one process's folder."""
    return counting.read_process(folder, on_dump=_simulations)


def disassemble(path, start, stop, run=subprocess.run):
    """{address: instruction text} of ``path`` (a library or program) between
    two addresses, by objdump (C++ names demangled)."""
    proc = run(["objdump", "-d", "-C", "--no-show-raw-insn", f"--start-address={start:#x}",
                f"--stop-address={stop:#x}", path], capture_output=True, text=True)
    out = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
        if m:
            text = " ".join(m.group(2).split())
            # a jump's or call's target: "jne b5b7e0 <void mlx::core::scatter<...>(...)+0x648>", name shortened
            target = re.match(r"^(.*?\s[0-9a-f]+) <(.*)>$", text)
            if target:
                text = f"{target.group(1)} <{short_name(target.group(2), 60)}>"
            out[int(m.group(1), 16)] = text
    return out


def hot_code(dump, functions=HOT_FUNCTIONS, share=HOT_SHARE, lines=HOT_LINES, run=subprocess.run):
    """A call's hottest machine code: for its ``functions`` dearest functions,
    [{"function", "object", "own", "lines": [[address, Ir, text]]}], the
    instructions of at least ``share`` of the function's own in address
    order (at most ``lines``, the dearest), disassembled where the library
    is still there ("" where not)."""
    out = []
    for fn in sorted(dump["instructions"], key=lambda f: -dump["functions"].get(f, 0))[:functions]:
        own = dump["instructions"][fn]
        total = sum(own.values()) or 1
        hot = sorted(own.items(), key=lambda kv: -kv[1])[:lines]
        hot = sorted((a, ir) for a, ir in hot if ir >= share * total)
        path = dump["objects"].get(fn, "")
        text = disassemble(path, hot[0][0], hot[-1][0] + 16, run=run) if hot and os.path.isfile(path) else {}
        out.append({"function": fn, "object": path, "own": total,
                    "lines": [[a, ir, text.get(a, "")] for a, ir in hot]})
    return out


def measure(sides, todo, folder, calls=DEFAULT_CALLS, processes=1, jobs=None, timeout_s=None, log=print,
            start=launch, use_store=False, identities=None):
    """Count every case of ``todo`` on each side ({name: python}); -> {name: side}.

    A counting process that dies (a case that crashes) or runs past
    ``timeout_s`` (a case that hangs) loses that case only: it is recorded as
    failed, with the reason, and a new process takes the cases after it.
    ``use_store``: a case already in the count store (benchmarks/lib/counting.py)
    under what decides the side's counts is taken from there, and the cases
    counted are kept there (one process a side, no simulation); ``identities``:
    sides' identities already read ({name: counting.identity_of's}), not asked again."""
    marks = marks_library()
    stored, idents = {name: {} for name in sides}, dict(identities or {})
    if use_store:
        for name, python in sides.items():
            if name not in idents:
                idents[name] = counting.identity_of(python, calls)
            for case in todo:
                entry = counting.stored(idents[name], case[0])
                if entry:
                    stored[name][case[0]] = dict(entry, stored=True)
            if stored[name]:
                log(f"{name}: {len(stored[name])} of {len(todo)} case(s) counted before (count store)")
    jobs_ = [(name, [c for c in todo if c[0] not in stored[name]], os.path.join(folder, f"{_safe(name)}-p{p}"))
             for p in range(processes) for name in sides]
    done = counting.run_processes(jobs_, timeout_s=timeout_s, width=jobs, log=log,
                                  start=lambda name, cases_left, sub: start(sides[name], cases_left, sub, calls, marks),
                                  read=read_process)
    out = {}
    for name in sides:
        side = counting.merge(done.get(name, []))
        if use_store:
            for key, row in side.items():
                counting.store(idents[name], key, row)
        out[name] = {**stored[name], **side}
    return out


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------


def compare(base, cand, min_effect=None, top=5):
    """[(Verdict, [(function, base Ir, cand Ir)] or why it was not measured)] for every case of ``base``."""
    out = []
    for key in sorted(set(base) | set(cand)):
        b, c = base.get(key, {}), cand.get(key, {})
        if "counts" not in b or "counts" not in c:
            why = b.get("error") or c.get("error") or b.get("skip") or c.get("skip") or "not measured"
            failed = bool(b.get("error") or c.get("error"))
            out.append((vd.Verdict(key, "failed" if failed else "skipped", float("nan"), float("nan"),
                                   float("nan"), float("nan"), 0, 0, 0, float("nan"), note=why), []))
            continue
        verdict = vd.decide_counts(key, b["counts"], c["counts"], min_effect=min_effect)
        changes = (callgrind.function_changes(b["functions"] or {}, c["functions"] or {}, top=top)
                   if verdict.verdict in (vd.SLOWER, vd.FASTER) else [])
        out.append((verdict, changes))
    return out


def fmt_count(n):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def markdown(report):
    lines = []
    for pair in report["pairs"]:
        lines.append(f"## {pair['base']} -> {pair['cand']}: instructions executed by the timed call "
                     f"(callgrind, {pair['calls']} calls x {pair['processes']} process(es) a side)")
        lines.append("")
        counts = {}
        for row in pair["cases"]:
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        lines.append(", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
        for verdict in (vd.SLOWER, vd.FASTER, vd.UNDECIDED, "failed", vd.SAME, "skipped"):
            rows = [r for r in pair["cases"] if r["verdict"] == verdict]
            if not rows or (verdict in (vd.SAME, "skipped") and len(report["pairs"]) > 1):
                continue  # a series lists what changed; its last table has every count
            title = {vd.SLOWER: "slower (more instructions)", vd.FASTER: "faster (fewer instructions)"}.get(verdict, verdict)
            lines += ["", f"### {title}: {len(rows)}", "", "| case | base | candidate | ratio | range |", "|---|---|---|---|---|"]
            for r in rows:
                if verdict in ("failed", "skipped"):
                    lines.append(f"| {r['key']} | | | | {r['note']} |")
                    continue
                lines.append(f"| {r['key']} | {fmt_count(r['base'])} | {fmt_count(r['cand'])} | {r['ratio']:.3f}x | "
                             f"{r['lo']:.4f}-{r['hi']:.4f}{' (' + r['note'] + ')' if r['note'] else ''} |")
                caches = r.get("caches") or [None, None]
                for _, title, events in SIMULATIONS:
                    if caches[0] and caches[1] and any(ev in caches[0] for ev, _ in events):
                        lines.append(f"|   {title}: " + ", ".join(
                            f"{what} {fmt_count(caches[0].get(ev, 0))} -> {fmt_count(caches[1].get(ev, 0))}"
                            for ev, what in events) + " | | | | |")
                for fn, b, c in r.get("functions", []):
                    lines.append(f"|   {short_name(fn)} | {fmt_count(b)} | {fmt_count(c)} | "
                                 f"{('%+.3g' % ((c - b) / r['base'] * 100)) + '% of base' if r['base'] else ''} | |")
        lines.append("")
        lines += hot_code_markdown(pair)
    for name, why in (report.get("left_out") or {}).items():
        lines.append(f"Left out: {name}: {why}")
    series = report.get("series")
    if series and len(series["names"]) > 2:
        lines += ["", "## Instructions a call, each release", "",
                  "| case | " + " | ".join(series["names"]) + " |", "|---|" + "---|" * len(series["names"])]
        for key, row in series["rows"].items():
            lines.append(f"| {key} | " + " | ".join(fmt_count(c) if c else "n/a" for c in row) + " |")
    return "\n".join(lines)


def hot_code_markdown(pair):
    """--annotate's section of a pair: each case's hottest code on both sides."""
    lines = []
    for r in pair["cases"]:
        hot = r.get("hot") or [None, None]
        if not (hot[0] and hot[1]):
            continue
        lines += ["", f"### Hottest code of one call: {r['key']}"]
        for name, side in ((pair["base"], hot[0]), (pair["cand"], hot[1])):
            for f in side:
                shown = sum(ir for _, ir, _ in f["lines"])
                lines += ["", f"{name}: `{short_name(f['function'])}`, {fmt_count(f['own'])} instructions of its own; "
                          f"the {len(f['lines'])} below are {100 * shown / f['own']:.0f}% of them", "", "```"]
                lines += [f"{a:#10x} {fmt_count(ir):>7}  {text or '(not disassembled: ' + f['object'] + ' is gone)'}"[:160]
                          for a, ir, text in f["lines"]]
                lines.append("```")
    return lines


def median_count(side, key):
    """The median of a case's counts on one side (the upper one of an even
    number: a count that was measured), or None without counts."""
    counts = sorted(side.get(key, {}).get("counts") or [])
    return counts[len(counts) // 2] if counts else None


def series_table(names, counts):
    """{"names": [...], "rows": {key: [median count or None, one a name]}}."""
    keys = sorted({k for n in names for k in counts[n]})
    return {"names": names, "rows": {key: [median_count(counts[n], key) for n in names] for key in keys}}


def build_report(names, counts, calls, processes, min_effect, top=5, left_out=None):
    """Each release against the one before, and the series' table of counts."""
    return {"names": names, "left_out": left_out or {}, "series": series_table(names, counts),
            "pairs": [pair_report(a, b, counts[a], counts[b], calls, processes, min_effect, top=top)
                      for a, b in zip(names, names[1:])]}


def exit_status(report):
    """1 if a case executes more instructions in any pair, else 0."""
    return 1 if any(r["verdict"] == vd.SLOWER for p in report["pairs"] for r in p["cases"]) else 0


def short_name(name, width=110):
    """A C++ function's name for a table: argument lists collapsed to (...)
    when the name is long (templates kept: Simd<float, 1> says a lot), then cut."""
    name = name.replace("|", "/")
    if len(name) > width:
        out, depth, inside = [], 0, []
        for ch in name:
            if ch == "(":
                depth += 1
                if depth == 1:
                    inside = []
                    continue
            elif ch == ")" and depth:
                depth -= 1
                if depth == 0:
                    out.append("(...)" if inside else "()")
                    continue
            if depth:
                inside.append(ch)
            else:
                out.append(ch)
        name = "".join(out)
    return name if len(name) <= width else name[:width - 3] + "..."


def pair_report(base_name, cand_name, base, cand, calls, processes, min_effect, top=5):
    rows = []
    for verdict, changes in compare(base, cand, min_effect=min_effect, top=top):
        rows.append({"key": verdict.key, "verdict": verdict.verdict, "ratio": verdict.ratio, "lo": verdict.lo,
                     "hi": verdict.hi, "note": verdict.note, "base": median_count(base, verdict.key) or 0,
                     "cand": median_count(cand, verdict.key) or 0, "functions": [list(c) for c in changes],
                     "caches": [(base.get(verdict.key) or {}).get("events"), (cand.get(verdict.key) or {}).get("events")],
                     "hot": [(base.get(verdict.key) or {}).get("hot"), (cand.get(verdict.key) or {}).get("hot")]})
    return {"base": base_name, "cand": cand_name, "calls": calls, "processes": processes, "cases": rows}


# Cases named in a hint, at most: valgrind takes seconds to minutes a case here.
HINT_CASES = 10


def hint_cases(verdicts, limit=HINT_CASES):
    """The keys among ``verdicts`` ([(key, verdict, ratio)], a time
    comparison's) whose work is worth counting: the slower or undecided
    ops.py cases on a CPU backend, slower first, then the undecided that
    moved most; at most ``limit``."""
    wanted = [(key, verdict, ratio) for key, verdict, ratio in verdicts
              if verdict in (vd.SLOWER, vd.UNDECIDED) and key.startswith("ops.")
              and any(key.endswith(f"'{b}')") for b in CPU_BACKENDS)]
    wanted.sort(key=lambda w: (w[1] != vd.SLOWER, -abs(math.log(w[2])) if w[2] > 0 else 0.0))
    return [w[0] for w in wanted[:limit]]


def hint(base_name, cand_name, verdicts):
    """For the slower or undecided ops.py cases on a CPU backend among
    ``verdicts`` ([(key, verdict, ratio)], a time comparison's): the command
    that says whether their work changed, and in which functions; "" if none."""
    keys = hint_cases(verdicts)
    if not keys:
        return ""
    from mlx_asv.measure import protocol

    return (f"Whether the work of {len(keys)} of these changed, and in which functions (instruction counts "
            f"under valgrind, minutes a case here): `python tools/instructions.py {base_name} {cand_name} "
            f"-b \"{protocol.case_regex(keys)}\"` (add --annotate for each case's hottest machine code "
            f"on both sides, where the time moved and the counts did not)")


# --------------------------------------------------------------------------
# Power: an A/A run with changes injected into its recorded counts
# --------------------------------------------------------------------------


def power(counts, base_name, cand_name, seeds=(1, 2, 3, 4, 5), factors=POWER_FACTORS, min_effect=None):
    """{"aa": {verdict: n}, "aa_alarms": [...], factor: (found, injected, called faster)} over ``seeds``."""
    base, cand = counts[base_name], counts[cand_name]
    keys = sorted(k for k in base if "counts" in base[k] and "counts" in cand.get(k, {}))
    aa = [vd.decide_counts(k, base[k]["counts"], cand[k]["counts"], min_effect=min_effect) for k in keys]
    out = {"cases": len(keys), "aa": vd.summary(aa),
           "aa_alarms": [(v.key, v.verdict, v.ratio) for v in aa if v.verdict in (vd.SLOWER, vd.FASTER)]}
    for factor in factors:
        found = injected = faster = 0
        for seed in seeds:
            rng = random.Random(seed)
            chosen = set(rng.sample(keys, len(keys) // 3))
            for k in chosen:
                v = vd.decide_counts(k, base[k]["counts"], [c * factor for c in cand[k]["counts"]],
                                     min_effect=min_effect)
                injected += 1
                found += v.verdict == vd.SLOWER
                faster += v.verdict == vd.FASTER
        out[f"{factor:g}"] = (found, injected, faster)
    return out


def power_text(result):
    lines = [f"A/A over {result['cases']} cases: " + ", ".join(f"{n} {v}" for v, n in result["aa"].items()),
             f"A/A false alarms: {len(result['aa_alarms'])} of {result['cases']}"]
    lines += [f"  {k} {v} {r:.4f}x" for k, v, r in result["aa_alarms"]]
    for factor in POWER_FACTORS:
        found, injected, faster = result[f"{factor:g}"]
        lines.append(f"injected +{(factor - 1) * 100:.0f}%: called slower {found} of {injected} "
                     f"({100 * found / max(injected, 1):.0f}%), called faster {faster}")
    return "\n".join(lines)


# --------------------------------------------------------------------------


def count_run(names, commits, todo, folder, calls=DEFAULT_CALLS, processes=1, jobs=None, timeout_s=None,
              min_effect=None, top=5, log=print, start=launch, use_store=False):
    """Count ``todo`` on each side (ledger names and their commits), decide
    each release against the one before, and keep the run in ``folder``
    (counts.json, verdicts.md, the dumps). A side that does not install is
    left out with its reason, as asv does. ``use_store``: see ``measure``.
    -> the report (build_report's, with the commits and the seconds it took)."""
    os.makedirs(folder, exist_ok=True)
    t0 = time.time()
    sides, skipped = {}, {}
    for name, commit in zip(names, commits):
        if name in sides:
            continue
        try:
            sides[name] = side_env(commit, log=log)
        except InstructionsError as e:
            log(f"{name} left out: {e}")
            skipped[name] = str(e)
    kept = [(n, c) for n, c in zip(names, commits) if n in sides]
    names, commits = [n for n, _ in kept], [c for _, c in kept]
    if len(names) < 2:
        raise InstructionsError(f"fewer than two of {', '.join(list(sides) + list(skipped))} installed")
    identities = {}
    for name in names:  # what decides each side's counts: the store's key, and kept for whoever publishes them
        try:
            identities[name] = counting.identity_of(sides[name], calls)
        except (counting.CountingError, OSError) as e:
            identities[name] = {"error": str(e)}
    counts = measure(sides, todo, folder, calls=calls, processes=processes, jobs=jobs, timeout_s=timeout_s,
                     log=log, start=start, use_store=use_store,
                     identities={n: i for n, i in identities.items() if "error" not in i})
    report = build_report(names, counts, calls, processes, min_effect, top=top, left_out=skipped)
    report.update(commits=commits, seconds=round(time.time() - t0, 1))
    with open(os.path.join(folder, "counts.json"), "w") as f:
        json.dump({"names": names, "commits": commits, "calls": calls, "processes": processes,
                   "left_out": skipped, "identities": identities, "counts": counts}, f)
    with open(os.path.join(folder, "verdicts.md"), "w") as f:
        f.write(markdown(report))
    return report


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("names", nargs="*", help="two or more ledger names (base first), e.g. v0.22.0 v0.22.1")
    ap.add_argument("-b", "--bench", help="regex over the cases' asv names, of ops.py, fused_ops.py and "
                                          "metal_kernels.py's CPU cases (default: every ops.py case)")
    ap.add_argument("--backends", default=",".join(CPU_BACKENDS), help="backends counted (only mlx_cpu: torch is pinned)")
    ap.add_argument("--calls", type=int, default=DEFAULT_CALLS, help="counted calls a case a process (default 1)")
    ap.add_argument("--processes", type=int, default=1, help="counting processes a side (default 1)")
    ap.add_argument("--jobs", type=int, help="processes at a time (default: the machine's cores)")
    ap.add_argument("--timeout", type=float, default=120.0, help="minutes a counting process may take (default 120)")
    ap.add_argument("--cache-sim", action="store_true",
                    help="also simulate the caches (slower): each case's simulated misses a call, beside its counts")
    ap.add_argument("--branch-sim", action="store_true",
                    help="also simulate branch prediction: each case's mispredicted branches a call, beside its counts")
    ap.add_argument("--annotate", action="store_true",
                    help="also show each case's hottest machine code on both sides (costs by instruction, objdump)")
    ap.add_argument("--recount", action="store_true",
                    help="count every case again, not taking counts kept in the count store")
    ap.add_argument("--min-effect", type=float, default=None,
                    help="same within this ratio (default: 1%% for a call of 1 M instructions or more, 5%% below)")
    ap.add_argument("--top", type=int, default=5, help="functions listed for a changed case (default 5)")
    ap.add_argument("--out", help="folder for this run (default .asv/instructions/<time>-<names>)")
    cli.add_format(ap)
    ap.add_argument("--power", metavar="RUN", nargs="+",
                    help="an A/A run's folder (a release against its twin), or two runs of the same releases "
                         "(each release against itself): the false alarms, and injected changes found")
    ap.add_argument("--show", metavar="RUN", help="a finished run's folder: its verdicts again (--min-effect, --top)")
    args = ap.parse_args(argv)
    if args.power or args.show:
        folder = args.show or args.power[0]
        try:
            runs = []
            for path in ([args.show] if args.show else args.power):
                folder = path
                with open(os.path.join(path, "counts.json")) as f:
                    runs.append(json.load(f))
            run = runs[0]
            names, counts = run["names"], run["counts"]
            if args.power:
                if len(runs) > 1:  # each release's counts in one run against the other's
                    counts = {f"run {i + 1}": {f"{name}: {k}": row for name in names for k, row in r["counts"][name].items()}
                              for i, r in enumerate(runs[:2])}
                    names = list(counts)
                print(power_text(power(counts, names[0], names[1], min_effect=args.min_effect)))
                return 0
            report = build_report(names, counts, run["calls"], run["processes"], args.min_effect, top=args.top,
                                  left_out=run.get("left_out"))
        except (OSError, ValueError, KeyError, IndexError) as e:
            print(f"instructions: {folder} is not a finished run of this tool ({type(e).__name__}: {e})",
                  file=sys.stderr)
            return 2
        print(json.dumps(report, indent=1) if args.format == "json" else markdown(report))
        return exit_status(report)
    from mlx_asv.envs import ledger
    from mlx_asv.measure import protocol

    if len(args.names) < 2 and not any(".." in n for n in args.names):
        print("instructions: name two ledger names or more (base first), e.g. v0.22.0 v0.22.1, "
              "or a range v0.29.0..v0.30.0", file=sys.stderr)
        return 2
    log = lambda m: print(f"instructions: {m}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        check_tools(annotate=args.annotate)
        names = protocol.expand(args.names)
        commits = [protocol.resolve(n) for n in names]
        backends = [b for b in args.backends.split(",") if b]
        pinned = [b for b in backends if b.startswith("torch")]
        if pinned:
            raise InstructionsError(f"{', '.join(pinned)}: torch is pinned, the same on both sides of an MLX "
                                    f"comparison (the time verdicts' A/A control), so it is not counted; use mlx_cpu")
        bad = [b for b in backends if b not in CPU_BACKENDS]
        if bad:
            raise InstructionsError(f"{', '.join(bad)}: valgrind counts CPU instructions only; "
                                    f"use {','.join(CPU_BACKENDS)} (GPU work is the gate's: tools/gate.py)")
        todo = cases(args.bench, backends)
        if not todo:
            raise InstructionsError(f"no counted case (ops.py, fused_ops.py, metal_kernels.py) on "
                                    f"{','.join(backends)} matches {args.bench!r}")
        folder = args.out or os.path.join(HOME, f"{protocol.stamp()}-{_safe('-'.join(args.names))}"[:200])
        t0 = time.time()
        report = count_run(names, commits, todo, folder, calls=args.calls, processes=args.processes,
                           jobs=args.jobs, timeout_s=args.timeout * 60, min_effect=args.min_effect, top=args.top,
                           log=log, start=functools.partial(launch, cache_sim=args.cache_sim,
                                                            branch_sim=args.branch_sim, annotate=args.annotate),
                           use_store=not (args.recount or args.processes > 1 or args.cache_sim
                                          or args.branch_sim or args.annotate))
    except (InstructionsError, ledger.LedgerError, protocol.ProtocolError) as e:
        print(f"instructions: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("instructions: interrupted; nothing was decided (the dumps so far are in .asv/instructions/)",
              file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1) if args.format == "json" else markdown(report))
    log(f"{len(todo)} cases on {len(report['names'])} sides counted in {time.time() - t0:.0f} s; "
        f"verdicts in {os.path.relpath(folder, ROOT)}/verdicts.md")
    return exit_status(report)


if __name__ == "__main__":
    sys.exit(main())
