"""Interleaved rounds of mlx_asv/gpu/gpu_asv.sh on a GPU machine: several MLX installs ("sides"), one session.

    python3 -m mlx_asv.gpu.gpu_rounds --rounds 4 --out DIR --bench REGEX \\
        a=/tmp/mlx-0.32.4 b=/tmp/mlx-0.32.4 old=/tmp/mlx-0.30.3

A side is ``LABEL=PYTHONPATH``: the folder(s) that select its MLX (each
release unpacked on its own). Two labels with the same path are an A/A pair:
the same install measured twice, whose verdicts can only be false alarms.

Each round runs ``mlx_asv/gpu/gpu_asv.sh MACHINE BENCH`` once per side (asv's
"existing" environment, a fresh process per case, one round a case, samples
recorded, results filed under the ledger commit of the installed release), in
an order that changes from round to round (:func:`order`): the measurement
protocol's order (``protocol.round_order``: as given in odd rounds, reversed
in even ones) of the sides rotated by (k - 1) // 2 in round k, so after
an even number of rounds every side has stood at every position equally
often on average, and a drift of the machine falls on all sides alike (for
two sides: A B, B A, B A, A B, the ABBA design). asv merges the results of
one commit into one file, so before every run the machine's results files are
cleared, and after it the run's file is moved to ``DIR/rK-LABEL.json`` (and
its log kept as ``DIR/rK-LABEL.log``): rounds never overwrite each other.
``python -m studies.gpu_verdicts DIR`` decides the comparisons from those files.

Resumable: a run whose file is already in DIR is not made again, so the same
command in a later call continues where the last one stopped. A deadline
(``--budget-s`` seconds from the start, or $BUDGET_S) is kept by not starting
a run that would not end before it (each run is expected to take as long as
the longest so far, ``--first-run-s`` before any); a run the deadline cuts
anyway is discarded.

Exit status: 0 when every run of every round is in DIR; 3 when the deadline
stopped it first (nothing is wrong: run it again to go on); 1 when a run
failed (gpu_asv.sh exited other than 0 or 2, where 2 means some cases failed
and are recorded as failed) or left no results file, with one line naming
it; 2 on bad arguments. A crash is never taken for a result.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

from mlx_asv import cli
from mlx_asv.measure import protocol

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# exit statuses
OK, FAILED, USAGE, STOPPED = 0, 1, 2, 3


def order(labels, k):
    """The order of the sides in round ``k`` (1-based): ``protocol.rotated_order``,
    the protocol's alternation (the gate's and the torch matrix's) of the sides
    rotated by (k - 1) // 2; the rotation moves every side through every
    position, where three or more sides alternating alone would keep the
    middle ones in the middle."""
    return protocol.rotated_order(labels, k)


def run_path(folder, k, label, ext="json"):
    return os.path.join(folder, f"r{k}-{label}.{ext}")


def parse_sides(items):
    sides = []
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"a side is LABEL=PYTHONPATH, not {item!r}")
        if not label.replace("_", "").replace(".", "").isalnum() or "-" in label:
            raise ValueError(f"a label is letters, digits, '_' and '.', not {label!r}")
        if label in dict(sides):
            raise ValueError(f"label {label!r} given twice")
        sides.append((label, path))
    if len(sides) < 2:
        raise ValueError("give at least two sides")
    return sides


def results_files(results_dir):
    return sorted(p for p in glob.glob(os.path.join(results_dir, "*.json"))
                  if os.path.basename(p) != "machine.json")


class Driver:
    def __init__(self, sides, rounds, out, bench, machine="h200", budget_s=None, first_run_s=150.0,
                 extra_path="", script=None, log=print, clock=time.time):
        self.sides, self.rounds, self.out, self.bench = sides, rounds, out, bench
        self.machine = machine
        self.clock = clock
        self.deadline = clock() + budget_s if budget_s else None
        self.first_run_s = first_run_s
        self.extra_path = extra_path
        self.script = script or os.path.join(ROOT, "mlx_asv", "gpu", "gpu_asv.sh")
        self.results_dir = os.path.join(ROOT, "results", machine)
        self.log = log

    def plan(self):
        """[(round, label)] in the order they run."""
        return protocol.plan_rounds([label for label, _ in self.sides], self.rounds, order)

    def left(self):
        return self.deadline - self.clock() if self.deadline else float("inf")

    def run(self):
        """The protocol's one rounds loop (``protocol.run_rounds``) over the sides,
        each run :meth:`one`; a run whose file is in ``out`` is done."""
        os.makedirs(self.out, exist_ok=True)
        paths = dict(self.sides)

        def run_side(k, label):
            rc = self.one(k, label, paths[label])
            return None if rc == OK else rc

        stop = protocol.run_rounds([label for label, _ in self.sides], self.rounds, run_side, order=order,
                                   done=lambda k, label: os.path.exists(run_path(self.out, k, label)),
                                   deadline=self.deadline, first_run_s=self.first_run_s, clock=self.clock,
                                   log=self.log, name="gpu_rounds", where=self.out)
        return OK if stop is None else STOPPED if stop == protocol.DEADLINE else stop

    def one(self, k, label, path):
        for p in results_files(self.results_dir):
            os.remove(p)  # asv would merge this run into the last one's file
        # ROUNDS=1: one process a case in each run, whatever the caller's environment holds (gpu_asv.sh
        # turns $ROUNDS into asv's -a rounds=N, which would run N processes a case and merge their samples)
        env = dict(os.environ, PYTHONPATH=":".join(x for x in (path, self.extra_path) if x), ROUNDS="1")
        env.pop("ASV_PYTHONPATH", None)  # gpu_asv.sh derives it from PYTHONPATH
        log_path = run_path(self.out, k, label, "log")
        cmd = ["bash", self.script, self.machine, self.bench]
        limit = self.left()
        started = self.clock()
        self.log(f"gpu_rounds: round {k} {label} ({path}) begins")
        with open(log_path + ".tmp", "w") as logf:
            # a session of its own, so that the deadline ends asv and its benchmark processes too
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=None if limit == float("inf") else max(limit, 1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
        wall = self.clock() - started
        os.replace(log_path + ".tmp", log_path)
        files = results_files(self.results_dir)
        if rc is None:
            for p in files:
                os.remove(p)
            self.log(f"gpu_rounds: round {k} {label} cut by the deadline after {wall:.0f} s: discarded "
                     f"(the same command measures it again)")
            return STOPPED
        if rc not in (0, 2):
            self.log(f"gpu_rounds: round {k} {label} failed: gpu_asv.sh exited {rc} after {wall:.0f} s "
                     f"(log: {log_path})")
            return FAILED
        if len(files) != 1:
            self.log(f"gpu_rounds: round {k} {label}: gpu_asv.sh exited {rc} but left {len(files)} results "
                     f"files in {self.results_dir}, not one (log: {log_path})")
            return FAILED
        try:
            with open(files[0], encoding="utf-8") as f:
                data = json.load(f)
            commit, n = data["commit_hash"], len(data["results"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.log(f"gpu_rounds: round {k} {label}: {files[0]} is not an asv results file "
                     f"({type(e).__name__}: {e})")
            return FAILED
        target = run_path(self.out, k, label)
        with open(target + ".tmp", "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(target + ".tmp", target)
        os.remove(files[0])
        with open(os.path.join(self.out, "rounds.log"), "a") as f:
            f.write(f"r{k}\t{label}\t{path}\trc={rc}\twall_s={wall:.1f}\tcommit={commit[:8]}\tbenchmarks={n}"
                    f"\tasv_rounds={env['ROUNDS']}\n")
        self.log(f"gpu_rounds: round {k} {label}: asv exited {rc} in {wall:.0f} s, {n} benchmarks "
                 f"(commit {commit[:8]}) -> {target}")
        return OK


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("sides", nargs="+", help="LABEL=PYTHONPATH, at least two")
    ap.add_argument("--rounds", type=int, required=True, help="rounds a side (an even number balances the order)")
    ap.add_argument("--out", required=True, help="folder of the rounds' results files rK-LABEL.json")
    ap.add_argument("--bench", required=True, help="asv -b regex")
    ap.add_argument("--machine", default="h200", help="asv machine name (default %(default)s)")
    ap.add_argument("--budget-s", type=float, default=float(os.environ.get("BUDGET_S") or 0) or None,
                    help="stop before this many seconds from now (default $BUDGET_S, else no deadline)")
    ap.add_argument("--first-run-s", type=float, default=150.0,
                    help="seconds a run is expected to take before one has run (default %(default)s)")
    ap.add_argument("--extra-path", default="", help="appended to every side's PYTHONPATH (e.g. asv's install)")
    args = ap.parse_args(argv)
    try:
        sides = parse_sides(args.sides)
        if args.rounds < 1:
            raise ValueError("--rounds must be at least 1")
    except ValueError as e:
        print(f"gpu_rounds: {e}", file=sys.stderr)
        return USAGE
    log = lambda m: print(m, flush=True)  # noqa: E731
    return Driver(sides, args.rounds, args.out, args.bench, machine=args.machine, budget_s=args.budget_s,
                  first_run_s=args.first_run_s, extra_path=args.extra_path, log=log).run()


if __name__ == "__main__":
    sys.exit(main())
