"""Instruction counts of the benchmarks' CPU callables under valgrind's
callgrind: the one counting path of asv's work benchmarks (benchmarks/work.py
for ops.py, work_fused_ops.py, work_metal_kernels.py), of
tools/instructions.py, the main job and the gate. Counted: the cases of the
modules of ``COUNTED`` that run on MLX's CPU (ops.py's and fused_ops.py's
``mlx_cpu``, metal_kernels.py's ``ours_mlx_cpu`` and ``mlx_linalg_cpu``);
models.py's are not (minutes a case under valgrind: docs/work-verdicts.md).

A counting process runs ``benchmarks/lib/count_child.py`` under
``valgrind --tool=callgrind --instr-atstart=no`` in the environment whose MLX
is counted. For each case it builds the callable asv times
(``CaseTable.callable``, which calls it once), then counts ``calls`` calls
between client requests (``native/callgrind_marks.c``, compiled once with cc)
that zero callgrind's counters and dump them, named after the case: every
thread's instructions during the call, MLX's evaluation thread included. The
counted calls start at the second where it executes 100 M instructions or
more, else at the third (count_child.py's ``STEADY_INSTRUCTIONS`` says why). ``OMP_NUM_THREADS=1``:
OpenMP threads that wait by spinning would add instructions that depend on
timing; ``PYTHONHASHSEED=0``: the same string hashes in every process. A call's count is the sum of its functions' own instructions
(``callgrind.read``).

Counts are kept in a store (``$MLX_ASV_COUNT_STORE``, default
``~/.cache/mlx-asv/counts``; ``off`` keeps none), one file a case, under a
key made of everything that decides the count: the installed MLX
distributions' files (their RECORD, which lists every file's sha256), NumPy's
and Python's versions, valgrind's version, the CPU (vendor and model), the
code that builds and calls the case (its module's files, ``MODULE_CODE``:
ops.py, fused_ops.py or metal_kernels.py with lib/linalg_kernels.py; and
common.py, this module and the child) and the number of calls. So the same wheel, case and machine kind is
counted once, whichever path asks (the main job's counting of both releases
side by side, then ``asv run``'s track benchmarks, which find the counts
there); any change of the code or the MLX build counts again.

Kept inside benchmarks/ because asv's benchmark environments can import only
this package; it imports nothing but the standard library (and, in the
child, the benchmarks).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

from . import callgrind

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(HERE)
# The folder that holds the benchmarks package: the counting child's PYTHONPATH.
PACKAGE_PARENT = os.path.dirname(BENCHMARKS)
CHILD = os.path.join(HERE, "count_child.py")
MARKS_SOURCE = os.path.join(HERE, "native", "callgrind_marks.c")
VALGRIND = ("valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-line=no")
STORE_ENV = "MLX_ASV_COUNT_STORE"
# The files whose code decides what a counted call of ops.py does.
CODE_FILES = tuple(os.path.join(BENCHMARKS, f) for f in ("ops.py", "common.py")) + (
    os.path.abspath(__file__), CHILD)
# The benchmark modules whose cases are counted, each with the values of its
# second parameter that run on MLX's CPU stream (metal_kernels.py's is an
# implementation: our pure-MLX composition, or mx.linalg). torch is pinned
# (the same on both sides of an MLX comparison) and never counted; the GPU's
# work is not valgrind's.
COUNTED = {
    "ops": ("mlx_cpu",),
    "fused_ops": ("mlx_cpu",),
    "metal_kernels": ("ours_mlx_cpu", "mlx_linalg_cpu"),
}
# The asv module of each counted module's work benchmarks (ops.py's kept
# their name, work.<Family>: results-reference/valgrind-x86-64 holds their history).
WORK_MODULES = {"ops": "work", "fused_ops": "work_fused_ops", "metal_kernels": "work_metal_kernels"}
# The files whose code decides what a counted call of each module does.
MODULE_CODE = {
    "ops": CODE_FILES,
    "fused_ops": (os.path.join(BENCHMARKS, "fused_ops.py"),) + CODE_FILES[1:],
    "metal_kernels": (os.path.join(BENCHMARKS, "metal_kernels.py"), os.path.join(HERE, "linalg_kernels.py"))
    + CODE_FILES[1:],
}
# Functions kept per case (by their own instructions): enough to explain a
# change, small enough to keep.
KEEP_FUNCTIONS = 60


class CountingError(Exception):
    """A counting that cannot start: one line naming the fix."""


def timed_method(cls):
    """The name of the class's time_ benchmark (ops.py's time_op, Compile's
    time_compile, fused_ops.RMSNorm's time_rms_norm, ...)."""
    return next(n for n in sorted(dir(cls)) if n.startswith("time_"))


def family_name(module, name):
    """A family as cases name it: ``ReLU`` for ops.py's (as always), else
    qualified by its module, ``fused_ops.RMSNorm``."""
    return name if module == "ops" else f"{module}.{name}"


def split_family(family):
    """(module, class name) of a ``family_name``."""
    module, _, name = family.rpartition(".")
    return module or "ops", name


def case_key(family, label, backend, method="time_op"):
    """The case's asv name: ops.<Family>.<method>('<label>', '<backend>'),
    or <module>.<Family>... for a family qualified by its module
    (``fused_ops.RMSNorm`` -> fused_ops.RMSNorm.time_rms_norm(...)); a
    metal_kernels case's second value is its implementation."""
    module, name = split_family(family)
    return f"{module}.{name}.{method}('{label}', '{backend}')"


def module_of(key):
    """The benchmark module of a case's key: ops, fused_ops or metal_kernels."""
    return key.split(".", 1)[0]


def work_key(key):
    """The asv name of a counted case's count: ops.F.time_op(...) (or
    time_compile) -> work.F.track_instructions(...);
    fused_ops.F.time_x(...) -> work_fused_ops.F.track_instructions(...);
    metal_kernels.F.time_x(...) -> work_metal_kernels.F.track_instructions(...)."""
    module, family = key.split(".", 2)[:2]
    return f"{WORK_MODULES[module]}.{family}.track_instructions({key.partition('(')[2]}"


def is_work_benchmark(name):
    """Is ``name`` (an asv benchmark's, with or without its parameters) an
    instruction count of ``WORK_MODULES``: work., work_fused_ops., work_metal_kernels.?"""
    return name.split(".", 1)[0] in WORK_MODULES.values() and "." in name


def families(module):
    """[(family_name, class, its CPU parameter values)] of a counted module
    (``COUNTED``), in name order: its concrete case tables defined there
    with at least one case on MLX's CPU. Imports the module."""
    import importlib
    import inspect

    from benchmarks.common import CaseTable

    mod = importlib.import_module(f"benchmarks.{module}")
    out = []
    for name, cls in sorted(vars(mod).items()):
        if (name.startswith("_") or not inspect.isclass(cls) or inspect.isabstract(cls)
                or not issubclass(cls, CaseTable) or cls.__module__ != mod.__name__ or not cls.cases):
            continue
        cpu = [p for p in cls.params[1] if p in COUNTED[module]]
        if cpu:
            out.append((family_name(module, name), cls, cpu))
    return out


def cpu_cases(module):
    """[(key, family, label, CPU parameter)] of every counted case of a module."""
    return [(case_key(family, label, p, timed_method(cls)), family, label, p)
            for family, cls, cpu in families(module) for label in cls.params[0] for p in cpu]


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------


def check_tools(which=None):
    """One line naming the fix if valgrind, its headers or a C compiler is missing."""
    which = which or shutil.which
    if not which("valgrind"):
        raise CountingError("valgrind is not installed (Debian: apt install valgrind)")
    if not which("cc"):
        raise CountingError("no C compiler (cc) to build benchmarks/lib/native/callgrind_marks.c "
                            "(Debian: apt install gcc)")
    if not os.path.exists("/usr/include/valgrind/callgrind.h"):
        raise CountingError("valgrind's headers are missing (/usr/include/valgrind/callgrind.h; "
                            "Debian: apt install valgrind)")


def cache_home():
    """``$XDG_CACHE_HOME/mlx-asv`` (``~/.cache/mlx-asv``), beside the input cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlx-asv")


def marks_library(home=None):
    """The compiled marks library (built once per source version)."""
    home = home or cache_home()
    with open(MARKS_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    path = os.path.join(home, f"callgrind_marks-{digest}.so")
    if not os.path.exists(path):
        os.makedirs(home, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        proc = subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", tmp, MARKS_SOURCE],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or "(no output)").splitlines()[-1]
            raise CountingError(f"compiling callgrind_marks.c failed: {tail}")
        os.replace(tmp, path)
    return path


_NO_ASLR = []


def no_aslr_prefix(run=subprocess.run):
    """``("setarch", "-R")`` where it works here, else ``()``.

    With the kernel's address randomization on, where libraries and the heap
    land changes per process, and with it the work of code that hashes or
    orders by address: in an A/A of the main job's cases (2 runs of 2
    releases) one ops.Compile case of 1 M+ instructions scattered by 1.15%
    between processes, 0.06% with ``setarch -R`` in front of valgrind.
    A container may forbid the personality call; then counting goes on with
    randomization, and the count's identity says so (``aslr``)."""
    if not _NO_ASLR:
        try:
            ok = run(["setarch", "-R", "true"], capture_output=True).returncode == 0
        except OSError:
            ok = False
        _NO_ASLR.append(("setarch", "-R") if ok else ())
    return _NO_ASLR[0]


def valgrind_version(run=subprocess.run):
    try:
        return run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def cpu_name(path="/proc/cpuinfo"):
    """The CPU's vendor and model ("AuthenticAMD AMD EPYC"), or platform's guess."""
    found = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                name = name.strip()
                if name in ("vendor_id", "model name") and name not in found:
                    found[name] = value.strip()
                if len(found) == 2:
                    break
    except OSError:
        pass
    return " ".join(found[k] for k in ("vendor_id", "model name") if k in found) or platform.processor()


# --------------------------------------------------------------------------
# What decides a count
# --------------------------------------------------------------------------


def installed_files(record):
    """The lines of a RECORD that name the distribution's own files: not the
    scripts in bin/ (their first line names the environment's interpreter)
    nor the dist-info's bookkeeping (INSTALLER, REQUESTED, direct_url.json),
    which differ between two installs of one wheel."""
    return sorted(line for line in record.splitlines()
                  if line.strip() and not line.startswith("../") and ".dist-info/" not in line.split(",")[0])


def is_mlx_distribution(name):
    """MLX's own distributions (mlx, mlx-cpu, mlx-metal, mlx-cuda-13, ...),
    not others whose name starts alike (this project's mlx-asv)."""
    return name == "mlx" or name in ("mlx-cpu", "mlx-metal") or name.startswith("mlx-cuda")


def mlx_build():
    """(sha256 of the installed MLX distributions' files, "mlx==V mlx-cpu==V").

    Their RECORD lists every installed file with its sha256, so two installs
    of one wheel, in any environment, agree and any other build differs."""
    import importlib.metadata as md

    h = hashlib.sha256()
    names = []
    for dist in sorted(md.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if not is_mlx_distribution(name):
            continue
        h.update(name.encode() + b"\0" + "\n".join(installed_files(dist.read_text("RECORD") or dist.version)).encode())
        names.append(f"{name}=={dist.version}")
    return h.hexdigest(), " ".join(names)


def code_digest(files=CODE_FILES):
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def identity(calls):
    """Everything that decides this environment's counts (this interpreter's).

    ``code`` is ops.py's code digest (as it always was), ``codes`` each
    counted module's (``MODULE_CODE``): a case's store entry is keyed by its
    own module's only (``case_identity``), so editing fused_ops.py counts
    fused_ops.py's cases again and no other."""
    import numpy

    build, names = mlx_build()
    return {"mlx": names, "mlx_build": build, "numpy": numpy.__version__,
            "python": sys.version.split()[0], "valgrind": valgrind_version(), "cpu": cpu_name(),
            "code": code_digest(), "codes": {m: code_digest(files) for m, files in sorted(MODULE_CODE.items())},
            "calls": int(calls), "aslr": "off" if no_aslr_prefix() else "on"}


def case_identity(ident, key):
    """What decides ``key``'s count, of an environment's ``identity``: the
    same with ``code`` the digest of the case's module (ops.py's identity is
    the environment's without ``codes``). An identity without ``codes`` is
    taken as it is."""
    codes = ident.get("codes")
    if not isinstance(codes, dict):
        return ident
    out = {k: v for k, v in ident.items() if k != "codes"}
    out["code"] = codes.get(module_of(key), out.get("code"))
    return out


def identity_of(python, calls):
    """``identity`` as the environment of interpreter ``python`` sees it."""
    proc = subprocess.run([python, "-m", "benchmarks.lib.counting", "--identity", str(calls)],
                          capture_output=True, text=True, cwd=PACKAGE_PARENT,
                          env=dict(os.environ, PYTHONPATH=PACKAGE_PARENT))
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-1]
        raise CountingError(f"asking {python} what decides its counts failed: {tail}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------


def store_dir():
    """The store's folder, or None if ``$MLX_ASV_COUNT_STORE`` is ``off``."""
    folder = os.environ.get(STORE_ENV, "")
    if folder.lower() == "off":
        return None
    return folder or os.path.join(cache_home(), "counts")


def _entry_path(folder, ident, key):
    digest = hashlib.sha256(json.dumps([ident, key], sort_keys=True).encode()).hexdigest()[:32]
    return os.path.join(folder, digest[:2], f"{digest}.json")


def stored(ident, key, folder=None):
    """The stored entry ({"counts": [...], "functions": {...}, ...}) of ``key``
    counted under ``ident``, or None. An unreadable file counts as absent."""
    folder = folder or store_dir()
    if not folder:
        return None
    ident = case_identity(ident, key)
    try:
        with open(_entry_path(folder, ident, key), encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    ok = (isinstance(entry, dict) and entry.get("key") == key and entry.get("identity") == ident
          and isinstance(entry.get("counts"), list) and entry["counts"])
    return entry if ok else None


def store(ident, key, row, folder=None):
    """Keep a counted case (written whole or not at all)."""
    folder = folder or store_dir()
    if not folder or not row.get("counts"):
        return
    ident = case_identity(ident, key)
    path = _entry_path(folder, ident, key)
    entry = {"key": key, "identity": ident, "counts": row["counts"], "functions": row.get("functions") or {},
             "counted": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        os.replace(tmp, path)
    except OSError as e:
        print(f"mlx-asv: could not write the count store {folder} ({e}); counts are not kept "
              f"(set {STORE_ENV} to a writable folder, or to off)", file=sys.stderr)


# --------------------------------------------------------------------------
# Counting processes
# --------------------------------------------------------------------------


def launch(python, todo, folder, calls, marks, extra=(), child=(CHILD,)):
    """Start one counting process: ``todo`` ([(key, family, label, backend)])
    in ``python``'s environment, dumps and log in ``folder``; ``extra``:
    more valgrind options (the simulations, ``--dump-instr``); ``child``: the
    program and its first arguments (a study's child: studies/second_call.py),
    given CASES CALLS MARKS like count_child.py."""
    os.makedirs(folder, exist_ok=True)
    cases_path = os.path.join(folder, "cases.json")
    with open(cases_path, "w") as f:
        json.dump([list(c) for c in todo], f)
    # PYTHONHASHSEED: Python salts its string hashes per process, which moves
    # the work of dicts and sets (mx.compile's caches most): in an A/A of the
    # main job's cases, 2 runs of 2 releases with a salt of their own, one
    # ops.Compile case of 1 M+ instructions differed by 1.2%.
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=PACKAGE_PARENT, PYTHONHASHSEED="0")
    cmd = [*no_aslr_prefix(), *VALGRIND, *extra, f"--callgrind-out-file={folder}/callgrind.%p", f"--log-file={folder}/valgrind.log",
           python, *child, cases_path, str(calls), marks]
    with open(os.path.join(folder, "child.jsonl"), "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=PACKAGE_PARENT)


def read_process(folder, keep=KEEP_FUNCTIONS, on_dump=None):
    """{key: {"counts": [...], "functions": {...}} or {"skip"|"error": why}}
    of one counting process's folder. ``on_dump(row, dump)`` may add more of
    a case's first counted dump to its row (tools/instructions.py's
    simulations). A case's second call (``<key>#2nd``) counts only where the
    child's line says so (``second_counted``: count_child.py)."""
    got, second_counted = {}, set()
    with open(os.path.join(folder, "child.jsonl"), encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the child's stray output (warnings)
            if not isinstance(row, dict) or "key" not in row:
                continue
            if "skip" in row or "error" in row:
                got[row["key"]] = {k: row[k] for k in ("skip", "error") if k in row}
            elif row.get("second_counted"):
                second_counted.add(row["key"])
    dumps = []
    for name in os.listdir(folder):
        if not re.fullmatch(r"callgrind\.\d+\.\d+", name):
            continue
        dump = callgrind.read(os.path.join(folder, name))
        if not dump["name"] or "#" not in dump["name"]:
            continue
        key, _, k = dump["name"].rpartition("#")
        if k == "2nd":
            if key not in second_counted:
                continue  # the uncounted second call of a small case
            k = "0"
        if k.isdigit():
            dumps.append((key, int(k), dump))
    for key, k, dump in sorted(dumps, key=lambda d: (d[0], d[1])):
        if "counts" not in got.get(key, {"counts": []}):
            continue  # a case that failed after some of its calls were dumped: its error stands
        row = got.setdefault(key, {"counts": [], "functions": None})
        row["counts"].append(dump["total"])
        if k == 0:
            row["functions"] = dict(sorted(dump["functions"].items(), key=lambda kv: -kv[1])[:keep])
            if on_dump:
                on_dump(row, dump)
    return got


def run_processes(jobs, timeout_s=None, width=None, log=print, start=None, read=read_process):
    """Run counting processes, ``width`` at a time (default: the cores).

    ``jobs``: [(name, todo, folder_stem)], each launched by ``start(name,
    todo, folder)``. A process that dies (a case that crashes) or runs past
    ``timeout_s`` (a case that hangs) loses that case only: it is recorded
    as failed, with the reason, and a new process takes the cases after it.
    Returns {name: [``read(folder)`` of each process]}."""
    width = width or os.cpu_count() or 1
    queue = [(name, list(todo), stem, 0) for name, todo, stem in jobs if todo]
    running, done = [], {name: [] for name, _, _ in jobs}
    t0 = time.time()
    while queue or running:
        while queue and len(running) < width:
            name, todo, stem, attempt = queue.pop(0)
            sub = stem + (f"-r{attempt}" if attempt else "")
            log(f"counting {name}: {len(todo)} case(s) under callgrind")
            running.append((name, todo, stem, attempt, sub, start(name, todo, sub), time.time()))
        time.sleep(0.2)
        for item in list(running):
            name, todo, stem, attempt, sub, proc, started = item
            hung = timeout_s and proc.poll() is None and time.time() - started > timeout_s
            if hung:
                proc.kill()
                proc.wait()
            elif proc.poll() is None:
                continue
            running.remove(item)
            got = read(sub) if os.path.isdir(sub) else {}
            left = [c for c in todo if c[0] not in got]
            if proc.returncode != 0 and left:
                why = (f"the counting process ran past {timeout_s / 60:g} min in this case" if hung
                       else f"the counting process died in this case (exit {proc.returncode}); see "
                            f"{sub}/valgrind.log")
                got[left[0][0]] = {"error": why}
                log(f"{name}: {left[0][0]}: {why}; the other cases go on")
                if left[1:]:
                    queue.insert(0, (name, left[1:], stem, attempt + 1))
            elif left:
                for c in left:
                    got[c[0]] = {"error": "the counting process ended without counting it; see "
                                          f"{sub}/child.jsonl"}
            done[name].append(got)
            log(f"{name}: counting process done after {time.time() - t0:.0f} s")
    return done


def merge(results):
    """One environment's {key: row} from its processes' ``read_process`` results."""
    side = {}
    for got in results:
        for key, row in got.items():
            if "counts" not in row:
                side.setdefault(key, row)
                continue
            into = side.setdefault(key, {**row, "counts": []})
            if "counts" in into:
                into["counts"] = into["counts"] + list(row["counts"])
    return side


def count_here(todo, calls, folder, timeout_s=None, log=None):
    """Count ``todo`` in this interpreter's environment, the store first:
    {key: row}; the cases the store lacks are counted in one process and kept."""
    ident = identity(calls)
    out, missing = {}, []
    for case in todo:
        entry = stored(ident, case[0])
        if entry:
            out[case[0]] = entry
        else:
            missing.append(case)
    if missing:
        check_tools()
        marks = marks_library()
        done = run_processes([("here", missing, os.path.join(folder, "p0"))], timeout_s=timeout_s, width=1,
                             log=log or (lambda m: None),
                             start=lambda _n, cases, sub: launch(sys.executable, cases, sub, calls, marks))
        for key, row in merge(done["here"]).items():
            if row.get("counts"):
                store(ident, key, row)
            out[key] = row
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--identity"]:
        print(json.dumps(identity(int(sys.argv[2]))))
        sys.exit(0)
    sys.exit("usage: python -m benchmarks.lib.counting --identity CALLS")
