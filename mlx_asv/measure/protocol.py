"""The measurement protocol for comparisons: several commits, one run, interleaved rounds.

Every comparison this suite makes a verdict on (``tools/gate.py``,
``studies/calibrate.py``, the main job's summary) is measured like this:

- all sides in one session, in *rounds*: each round runs every selected case
  once for each side, each case in a fresh process (asv's own way), and the
  order of the sides alternates from round to round (A B, then B A, ...), so
  that a drift of the machine during the run falls on both sides alike. This
  is asv's ``--interleave-rounds`` scheme, run one round per ``asv run``
  (``-a rounds=1``), because asv merges the samples of all rounds into one
  list and the verdicts need to know which samples came from which process;
- samples recorded (``--record-samples``), each process's list kept apart;
- few samples a process (``-a repeat=1,5,1.0``: up to 5, or 1 s, at least
  one), because the verdicts' unit is the process: the fastest sample of a
  process scatters from process to process of one build by a median of 2.6%
  here, while more samples in one process only sharpen that process's own
  minimum (their spread inside a process, ~2% at 10-100 ms, shrinks the
  minimum's by a few tenths of a percent from 5 samples to 10). The time
  goes to more processes instead;
- results in a results directory of the run's own (``.asv/<tool>/<run>/``),
  through an asv config derived from ``asv.conf.json`` (same benchmarks,
  ledger and environments), so nothing here mixes with ``results/``.

A round's data is kept in ``rounds.json`` beside the results as soon as the
round ends: an interrupted run keeps every finished round.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time

from benchmarks.common import BACKENDS  # the one backend list; numpy only, the frameworks load lazily
from benchmarks.lib import model_inputs  # the models' table; numpy only
from mlx_asv.envs import asv_config, ledger

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONF = asv_config.CONF


# asv's `repeat` in comparison sessions: (at least, at most, seconds); see above.
PROTOCOL_REPEAT = (1, 5, 1.0)


class ProtocolError(Exception):
    pass


def asv_executable():
    here = os.path.join(os.path.dirname(sys.executable), "asv")
    return here if os.path.exists(here) else "asv"


def derived_config(folder, env_nobuild=None, conf_path=CONF):
    """Write ``folder/asv.conf.json``: the project's config with its results and
    site in ``folder``; ``env_nobuild`` ({VAR: value}) adds variables to the
    matrix (they become part of every result's environment name)."""
    conf = asv_config.load_conf(conf_path)
    # asv runs from its config's folder: every path must be absolute.
    for field in ("repo", "benchmark_dir", "env_dir"):
        conf[field] = os.path.join(ROOT, conf[field])
    conf["results_dir"] = os.path.join(folder, "results")
    conf["html_dir"] = os.path.join(folder, "html")
    # {conf_dir} would name this folder: the tools live in the project.
    conf["install_command"] = [c.replace("{conf_dir}", ROOT) for c in conf.get("install_command", [])]
    conf["install_command"] = [
        c.replace(os.path.join(ROOT, "results", "install-failures.tsv"),
                  os.path.join(folder, "install-failures.tsv"))
        for c in conf["install_command"]
    ]
    if env_nobuild:
        matrix = conf.setdefault("matrix", {})
        nobuild = matrix.setdefault("env_nobuild", {})
        for var, value in env_nobuild.items():
            nobuild[var] = [value]
    os.makedirs(folder, exist_ok=True)
    # asv exports this folder to the benchmarks as ASV_CONF_DIR, and the
    # release check (benchmarks/common.py) reads the ledger from there.
    link = os.path.join(folder, "ledger")
    if not os.path.lexists(link):
        os.symlink(os.path.join(ROOT, conf["repo"]) if not os.path.isabs(conf["repo"]) else conf["repo"], link)
    path = os.path.join(folder, "asv.conf.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(conf, f, indent=2)
    return path


def resolve(name, repo=ledger.DEFAULT_REPO):
    """A ledger name (tag, branch, candidate, hash) -> its commit hash, or one line."""
    out = ledger.git(repo, "rev-parse", "-q", "--verify", f"{name}^{{commit}}", check=False).strip()
    if not out:
        known = ledger.newest_tag(repo)
        raise ProtocolError(
            f"{name!r} is not in the release ledger (newest release there: {known}); "
            f"python tools/ledger.py --list shows releases and candidates, "
            f"python tools/ledger.py --candidate NAME ... adds one"
        )
    return out


def resolve_quiet(run):
    """The base commit of a calibration run's record (its release, resolved in the ledger)."""
    try:
        return resolve(run["release"])
    except ProtocolError:
        return None


def describe(commit, repo=ledger.DEFAULT_REPO):
    """The name people know a ledger commit by: its tag, its candidate branch, or the hash."""
    names = ledger.git(repo, "for-each-ref", "--points-at", commit, "--format=%(refname:short)",
                        "refs/tags", "refs/heads/candidate", check=False).split()
    return names[0] if names else commit[:8]


def default_launch_method():
    # forkserver saves ~1 s of imports per process on Linux without a GPU;
    # MLX's CUDA build crashed in a forked child, and macOS can't fork safely.
    if sys.platform == "linux" and not os.path.exists("/proc/driver/nvidia/version"):
        return "forkserver"
    return None


# The benchmarks of ops.py, up to their parameters (bench_regex's default).
OPS_BENCHMARKS = r"^ops\.[^(]*"


def bench_regex(backends, names=OPS_BENCHMARKS):
    """An asv -b regex: the cases of the benchmarks ``names`` matches (a regex
    on an asv name from its start up to its parameters) whose backend
    parameter is one of ``backends``."""
    return names + r"\(.*'(" + "|".join(backends) + r")'\)$"


def family_on(bench, backends):
    r"""``bench`` on the backends ``backends()`` returns, where it names no
    parameters (a family regex such as ``^ops\.Softmax\.``), so that no
    process starts for the others; a regex that names parameters is the
    caller's choice, as given. ``backends`` is called only where it is needed:
    detecting them imports the frameworks (seconds)."""
    if "(" in bench:
        return bench
    return bench_regex(backends(), names=bench.rstrip("$") + ".*")


def case_regex(keys):
    """An asv -b regex matching exactly these cases ('name(p1, p2)' each)."""
    return "^(?:" + "|".join(re.escape(k) for k in sorted(keys)) + ")$"


def group_of(key):
    """The prior group of a case: its backend parameter (cases of one backend
    share a noise level), or '' for cases without one."""
    for b in BACKENDS:
        if f"'{b}'" in key:
            return b
    return ""


def _results_of(results_dir, commit, since=None):
    """The asv results files (parsed) of one commit, any machine; with
    ``since``, only files written since that time: this round's."""
    for machine in sorted(os.listdir(results_dir)) if os.path.isdir(results_dir) else []:
        sub = os.path.join(results_dir, machine)
        for name in sorted(os.listdir(sub)) if os.path.isdir(sub) else []:
            path = os.path.join(sub, name)
            if not name.endswith(".json") or name == "machine.json":
                continue
            if since is not None and os.path.getmtime(path) < since:
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                continue
            if data.get("commit_hash") == commit:
                yield data


def expand(specs):
    """Release names in ledger order: 'v0.29.0..v0.32.4' is inclusive."""
    built = [rel.tag for rel, _ in ledger.ensure(log=lambda m: print(m, file=sys.stderr))]
    out = []
    for spec in specs:
        if ".." in spec:
            a, b = spec.split("..", 1)
            if a not in built or b not in built:
                raise ProtocolError(f"{spec}: both ends must be ledger releases "
                                    f"(newest: {built[-1]}); python tools/ledger.py --list")
            out += built[built.index(a):built.index(b) + 1]
        else:
            out.append(spec)
    if len(out) < 2:
        raise ProtocolError("name at least two releases (or a range A..B)")
    return out


def case_results(data):
    """(case key, status, samples) of every case in one parsed asv results
    file: status 'ok' (samples: the recorded samples, or the result alone
    where none were recorded), 'failed' (asv stored null: the case raised or
    its process died) or 'skipped' (asv stored NaN: NotImplementedError, e.g.
    a backend this machine lacks); samples is [] unless ok."""
    cols = data.get("result_columns", [])
    for bench, row in (data.get("results") or {}).items():
        r = dict(zip(cols, row))
        params = r.get("params") or []
        combos = list(itertools.product(*params)) if params else [()]
        samples = r.get("samples") or [None] * len(combos)
        values = r.get("result")
        values = values if isinstance(values, list) else [values] * len(combos)
        for combo, s, v in zip(combos, samples, values):
            key = f"{bench}({', '.join(combo)})" if combo else bench
            if s:
                yield key, "ok", [x for x in s if x is not None]
            elif v is not None and isinstance(v, (int, float)) and v == v:
                yield key, "ok", [v]  # a result without samples: one observation
            elif v is None:
                yield key, "failed", []
            else:
                yield key, "skipped", []


def read_samples(results_dir, commit, since=None):
    """{case key: samples} of one commit from asv's results files (cases that
    failed or were skipped have none: see :func:`case_results`)."""
    found = {}
    for data in _results_of(results_dir, commit, since):
        for key, status, samples in case_results(data):
            if status == "ok":
                found[key] = samples
    return found


def read_durations(results_dir, commit, since=None):
    """{benchmark: seconds asv spent on it} for one commit."""
    found = {}
    for data in _results_of(results_dir, commit, since):
        cols = data.get("result_columns", [])
        for bench, row in data.get("results", {}).items():
            duration = dict(zip(cols, row)).get("duration")
            if isinstance(duration, (int, float)):
                found[bench] = duration
    return found


COSTS = os.path.join(ROOT, ".asv", "costs.json")


def case_costs(seconds, samples):
    """Seconds a process of each case took: asv records one duration for all
    the cases of a benchmark, so each case gets its own calls (its samples and
    the warm-up call its build makes) and an equal share of the rest (process
    start, set-up)."""
    if not samples:
        return {}
    calls = {k: sum(s) + min(s) for k, s in samples.items() if s}
    rest = max(0.0, seconds - sum(calls.values())) / len(samples)
    return {k: calls.get(k, 0.0) + rest for k in samples}


def load_costs(path=COSTS):
    """{case key: seconds one process takes on this machine}, from earlier sessions."""
    try:
        with open(path, encoding="utf-8") as f:
            return {k: float(v) for k, v in json.load(f).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def save_costs(costs, path=COSTS):
    merged = load_costs(path)
    merged.update(costs)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=0, sort_keys=True)
    os.replace(tmp, path)


def excluding(bench, keys):
    """An asv -b regex: ``bench`` without these cases."""
    if not keys:
        return bench
    return "^(?!(?:" + "|".join(re.escape(k) for k in sorted(keys)) + ")$)(?:" + bench + ")"


def round_order(sides, number):
    """The sides in round ``number`` (from 1): as given in odd rounds, reversed
    in even ones, so that no side always runs first."""
    return list(sides) if number % 2 else list(sides)[::-1]


def rotated_order(sides, number):
    """The sides in round ``number`` (from 1) for the GPU rounds: :func:`round_order`
    of the sides rotated by (number - 1) // 2; the rotation moves every side
    through every position, where three or more sides alternating alone would
    keep the middle ones in the middle (for two sides: A B, B A, B A, A B)."""
    sides = list(sides)
    shift = ((number - 1) // 2) % len(sides)
    return round_order(sides[shift:] + sides[:shift], number)


def plan_rounds(sides, rounds, order=round_order, first=1):
    """[(round, side)] of rounds ``first``..``rounds``, in the order they run."""
    return [(k, side) for k in range(first, rounds + 1) for side in order(sides, k)]


# What run_rounds returns when its deadline stopped it.
DEADLINE = "deadline"


def run_rounds(sides, rounds, run_side=None, *, run_round=None, first=1, order=round_order, done=None,
               after_round=None, deadline=None, first_run_s=0.0, clock=time.time, log=None,
               name="rounds", where=""):
    """The one rounds loop of the suite: rounds ``first``..``rounds`` over
    ``sides``, each round's sides in ``order(sides, k)`` (:func:`round_order`,
    the gate's and the torch matrix's; :func:`rotated_order`, the GPU rounds').

    The caller says only how a run is made: ``run_side(k, side)`` measures and
    records one side of round k (the torch matrix: one ``asv run`` a torch
    version; the GPU rounds: one ``gpu_asv.sh`` a MLX install), or
    ``run_round(k, ordered_sides)`` a whole round at once (``Session.round``:
    one ``asv run`` over a hash file of all the commits). A runner returns
    None to go on; anything else stops the loop, which returns it.

    - ``done(k, side)``: that run is made already (a resumed session), so it is
      not made again; a round is skipped whole in ``run_round`` mode only
      where all its sides are done;
    - ``after_round(k)``: called after the last run of round k in this call,
      for the rounds that ran (the torch matrix saves its rounds.json);
    - ``deadline`` (a ``clock()`` time): a run is not started unless it would
      end before it, a run being expected to take as long as the longest so
      far (timed here on ``clock``), ``first_run_s`` before any has run;
      the loop then returns :data:`DEADLINE`;
    - ``log``: where the loop's own lines go ("NAME: N runs already in WHERE;
      M to go", "NAME: stopped before round K side S: ...", "NAME: all N runs
      in WHERE"); None for callers whose runners log each run themselves.

    Returns None when every run of every round is made."""
    if (run_side is None) == (run_round is None):
        raise TypeError("run_rounds takes one of run_side and run_round")
    done = done or (lambda k, side: False)
    plan = plan_rounds(sides, rounds, order, first)
    if run_round is not None:  # a run is a round: the round's sides in its order
        plan = [(k, [s for j, s in plan if j == k]) for k in range(first, rounds + 1)]
        todo = [(k, ordered) for k, ordered in plan if not all(done(k, s) for s in ordered)]
    else:
        todo = [(k, side) for k, side in plan if not done(k, side)]
    made = len(plan) - len(todo)
    if made and log:
        log(f"{name}: {made} runs already in {where}; {len(todo)} to go")
    walls = []
    for i, (k, what) in enumerate(todo):
        expected = max(walls) if walls else first_run_s
        left = deadline - clock() if deadline else float("inf")
        if left < expected:
            if log:
                log(f"{name}: stopped before round {k} side {what}: {left:.0f} s left, a run "
                    f"takes ~{expected:.0f} s; {made} of {len(plan)} runs in {where} "
                    f"(the same command goes on)")
            return DEADLINE
        started = clock()
        stop = run_round(k, what) if run_round is not None else run_side(k, what)
        if stop is not None:
            return stop
        walls.append(clock() - started)
        made += 1
        if after_round and (i + 1 == len(todo) or todo[i + 1][0] != k):
            after_round(k)
    if log:
        log(f"{name}: all {len(plan)} runs in {where}")
    return None


def write_hashfile(folder, number, commits):
    """``folder/round<number>.hashes``: the commits asv runs in this round, in order."""
    hashfile = os.path.join(folder, f"round{number}.hashes")
    with open(hashfile, "w") as f:
        f.write("\n".join(commits) + "\n")
    return hashfile


def run_command(config, hashfile, bench, repeat=None, launch_method=None, asv=None):
    """The ``asv run`` of one round on ``config``: the commits of ``hashfile``,
    a fresh process a case and commit (rounds=1), every sample recorded."""
    cmd = [asv or asv_executable(), "--config", config, "run", f"HASHFILE:{hashfile}",
           "--record-samples", "-a", "rounds=1", "--bench", bench]
    if repeat:
        cmd += ["-a", "repeat=" + ",".join(str(x) for x in repeat)]
    if launch_method:
        cmd += ["--launch-method", launch_method]
    return cmd


# asv names of models.py's benchmarks, one per model and benchmark (benchmarks/models.py's params:
# model, length, batch[, backend]), from the models' own table
MODELS_NAMES = tuple(f"models.{bench}('{model}', {model_inputs.LENGTHS[0]}, {model_inputs.BATCHES[0]}{backend})"
                     for model in model_inputs.MODELS
                     for bench, backend in [("Inference.time_forward", f", '{b}'") for b in BACKENDS]
                     + [("Tokens.track_tokens", ""), ("Tokens.track_real_tokens", "")])


def selects_models(bench):
    """False where the asv -b regex ``bench`` can select no models.py benchmark: asv's
    forkserver then need not import transformers for them (benchmarks/models.py,
    $MLX_ASV_PRELOAD_MODELS: seconds of each server start). A
    regex Python cannot read selects them, to be safe."""
    try:
        rx = re.compile(bench)
    except re.error:
        return True
    return any(rx.search(name) for name in MODELS_NAMES)


def run_asv(cmd, config, environ=None, quiet=True):
    """Run ``cmd`` (:func:`run_command`) from its config's folder; ``quiet``
    keeps asv's output (stderr with it) in the result's stdout. Where its
    ``--bench`` selects no models.py case, the forkserver skips importing
    transformers (:func:`selects_models`), unless the environment says."""
    env = dict(environ if environ is not None else os.environ)
    if "--bench" in cmd and model_inputs.PRELOAD_ENV not in env:
        env[model_inputs.PRELOAD_ENV] = "1" if selects_models(cmd[cmd.index("--bench") + 1]) else "0"
    # asv imports the project's plugin (tools.asv_plugin) from its cwd,
    # which is a derived config's folder: point Python at the project.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run(cmd, cwd=os.path.dirname(config), env=env, text=True,
                          stdout=subprocess.PIPE if quiet else None,
                          stderr=subprocess.STDOUT if quiet else None)


def load_rounds(path):
    """A session's ``rounds.json`` ({"commits", "rounds", "data"[, "cost"]}), or None if there is none yet."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_rounds(path, commits, rounds, data, cost=None):
    """Write ``rounds.json`` whole or not at all (a session interrupted
    mid-write resumes from the rounds before)."""
    saved = {"commits": commits, "rounds": rounds, "data": data}
    if cost is not None:
        saved["cost"] = cost
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(saved, f)
    os.replace(tmp, path)


class Session:
    """One run's rounds over several commits, kept in ``folder/rounds.json``.

    ``data[key][commit]`` is a list of sample lists, one per process.
    """

    def __init__(self, folder, commits, bench, env_nobuild=None, launch_method="auto",
                 log=print, quiet=True, environ=None, project_results=False, repeat="auto"):
        self.folder = os.path.abspath(folder)
        self.commits = list(commits)
        self.bench = bench
        self.log = log
        self.quiet = quiet
        self.environ = environ
        os.makedirs(self.folder, exist_ok=True)
        # project_results: the project's own config, results in results/ (the
        # main job: its site shows them); else a config of the run's own.
        self.config = CONF if project_results else derived_config(self.folder, env_nobuild)
        self.results_dir = (os.path.join(ROOT, asv_config.load_conf().get("results_dir", "results")) if project_results
                            else os.path.join(self.folder, "results"))
        self.launch_method = default_launch_method() if launch_method == "auto" else launch_method
        # The main job's results are the site's: they keep each class's own
        # asv settings; comparisons take PROTOCOL_REPEAT.
        self.repeat = (None if project_results else PROTOCOL_REPEAT) if repeat == "auto" else repeat
        self.path = os.path.join(self.folder, "rounds.json")
        self.data = {}
        # seconds one process of a case takes, set-up included (the last round's
        # asv duration of its benchmark, shared among the cases it ran)
        self.cost = {}
        self.rounds = 0
        self.seconds = 0.0
        self.failed = set()
        saved = load_rounds(self.path)
        if saved:
            self.data, self.rounds = saved["data"], saved["rounds"]
            self.cost = saved.get("cost", {})

    def save(self):
        save_rounds(self.path, self.commits, self.rounds, self.data, cost=self.cost)

    def round(self, keys=None, order=None, bench=None):
        """Run one round over ``keys`` (default: ``bench``, else the session's
        -b regex) for every commit, in ``order`` (default: alternating with
        the round number, :func:`round_order`); the round is one step of
        :func:`run_rounds`, whose runner is one ``asv run`` over all the commits.
        Returns its seconds."""
        took = []

        def one_asv_run(number, ordered):
            took.append(self._round(number, ordered, keys, bench))

        given = None if order is None else list(order)
        run_rounds(self.commits, self.rounds + 1, run_round=one_asv_run, first=self.rounds + 1,
                   order=round_order if given is None else (lambda sides, k: given))
        return took[0]

    def _round(self, number, order, keys, bench):
        self.rounds = number
        bench = case_regex(keys) if keys is not None else (bench or self.bench)
        hashfile = write_hashfile(self.folder, self.rounds, order)
        cmd = run_command(self.config, hashfile, bench, repeat=self.repeat, launch_method=self.launch_method)
        started = time.time()
        shown = [f"<{len(keys)} cases>" if c == bench and keys is not None else c for c in cmd]
        self.log(f"round {self.rounds} ({' '.join(c[:8] for c in order)}): "
                 f"{' '.join(shlex.quote(c) for c in shown)}")
        proc = run_asv(cmd, self.config, environ=self.environ, quiet=self.quiet)
        self.seconds += time.time() - started
        # asv run exits 2 when a case failed: the others have results.
        if proc.returncode not in (0, 2):
            tail = (proc.stdout or "").strip().splitlines()[-5:] if self.quiet else []
            raise ProtocolError(f"asv run failed (exit {proc.returncode}) in round {self.rounds}: "
                                + " | ".join(tail))
        round_cost = {}
        for commit in order:
            got = read_samples(self.results_dir, commit, since=started)
            if not got:
                errors = [line.strip() for line in (proc.stdout or "").splitlines()
                          if re.search(r"\w+Error: |^\s*install\.py: ", line)]
                why = errors[-1] if errors else (
                    f"its install failed? see {os.path.join(self.folder, 'install-failures.tsv')}")
                raise ProtocolError(f"round {self.rounds}: no case of {commit[:8]} has a result: {why}")
            ran = {}
            for key, samples in got.items():
                if keys is not None and key not in keys:
                    continue
                self.data.setdefault(key, {}).setdefault(commit, []).append(samples)
                ran.setdefault(key.split("(")[0], []).append(key)
            for bench, seconds in read_durations(self.results_dir, commit, since=started).items():
                for key, cost in case_costs(seconds, {k: got[k] for k in ran.get(bench, [])}).items():
                    round_cost[key] = max(round_cost.get(key, 0.0), cost)
        self.cost.update(round_cost)
        if not os.environ.get("MLX_ASV_INJECT"):
            save_costs(round_cost)  # this machine's costs, for the next session's plan
        self.save()
        return time.time() - started

    def runs(self, key, commit, first_round=0):
        return self.data.get(key, {}).get(commit, [])

    def keys(self):
        return sorted(self.data)


def stamp():
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")
