#!/usr/bin/env python3
"""The gate: did CANDIDATE make anything slower, or do more work, than BASE?
Exit 1 only on a confirmed slowdown or more instructions.

    python tools/gate.py v0.32.4 candidate/my-pr            # ops.py, the backends this machine has
    python tools/gate.py v0.31.2 v0.32.4 -b Softmax         # two releases, one family
    python tools/gate.py v0.32.4 candidate/my-pr --budget 30 --format json
    python tools/gate.py v0.32.3 v0.32.4 --no-instructions  # time verdicts only (no valgrind)

BASE and CANDIDATE are ledger names: release tags, candidate branches
(``python tools/ledger.py --candidate NAME --base v0.32.4 --wheel FILE``) or
commit hashes. asv does the measuring (tools/protocol.py: one session,
interleaved rounds, a fresh process per case per round, samples recorded,
results in ``.asv/gate/<run>/``); reporting/verdicts.py decides.

Steps:
1. two rounds in alternating order (base then cand, then cand then base),
   planned from what each case's process cost in earlier sessions on this
   machine (``.asv/costs.json``, kept by tools/protocol.py): in ascending
   cost, a case gets both rounds if they fit in 80% of ``--budget``, else one
   process a side if that fits, else it is not measured (listed, with its
   cost). A case with one process a side takes its variance from the other
   cases of its backend (the moderated test's prior), so it is still
   decided, with a wider interval. With no costs known yet, the first round
   measures every case and the second the cheapest the budget affords;
2. verdicts on those rounds: slower, faster, same, undecided;
3. sequential confirmation, while the budget lasts (three looks at most):
   the cases that are not "same" are measured again, two more rounds a side,
   as many as fit: first those the pooled rounds call changed, cheapest
   first, then the undecided ones that are nearest to a decision per second
   of measuring. Each look decides on all rounds so
   far, at alpha / 3 (Bonferroni over the looks, so that looking again does
   not raise the false-alarm rate); a change counts only once fresh rounds
   have been measured after the look that first saw it and point the same
   way on their own; "same" counts at once. What is still open when the
   budget ends is undecided, with the rounds a side that would decide it.

4. the work verdicts, after the budget, where valgrind runs (Linux): the
   instructions a call of every ``mlx_cpu`` case executes on each side
   (tools/instructions.py, one call a side under valgrind, both sides at
   once, counts kept in the count store so a base counted before is not
   counted again), each shown beside its time verdict ("work: 1.415x
   instructions, more"): more work past the threshold (1% at 1 M
   instructions or more, 5% below: the A/A spread) fails the gate, naming
   the case, the ratio and the function whose own instructions grew most.
   ``--no-instructions`` leaves them out; off Linux they are left out with
   the reason.

Exit status: 1 if a slowdown is confirmed or a case does more work, 0
otherwise (faster, same and undecided cases are listed), 2 on bad input
(one line), or when the counting failed (and nothing was confirmed slower).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time

from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import instructions
from mlx_asv.measure import protocol
from mlx_asv.envs import ledger
from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_BUDGET_MIN = 15.0
# A case whose process takes longer than this (seconds, set-up included) gets
# one process a side: on this 2-core machine MLX's reference-BLAS matmuls take
# 10-37 s a call (benchmarks/ops.py's MatMul and Linear). Its variance then
# comes from the other cases of its backend (the moderated test's prior).
DEFAULT_LONG = 5.0
# The share of what is left of the budget after the first round that the
# second round leaves for confirmations.
CONFIRM_SHARE = 0.2
# Seconds asv needs per `asv run` beyond the cases: discovery, a benchmark
# server per side (~3.5 s of imports each here), an install where a side's MLX
# differs (~4.5 s; none for a release twin, tools/install.py keeps it).
ROUND_OVERHEAD = 15.0


def detected_backends():
    """The backends this machine can run (the gate's default)."""
    from benchmarks import common

    return [b for b in common.BACKENDS if common.unavailable_reason(b) is None]


class Rule:
    """The gate's decision rule over rounds measured so far (``data``: {key:
    {side: [samples of each process]}}): each case's prior group, the looks at
    alpha / max_stages, a change confirmed by fresh rounds, and the rounds an
    undecided case would need. :class:`Gate` measures and asks it after each
    stage; :func:`replay` asks it over rounds a gate recorded."""

    def __init__(self, base, cand, alpha=vd.ALPHA, min_effect=vd.MIN_EFFECT, same_within=vd.SAME_WITHIN,
                 max_stages=3):
        self.base, self.cand = base, cand
        self.alpha, self.min_effect, self.same_within = alpha, min_effect, same_within
        self.max_stages = max_stages
        self.groups = {}  # {key: prior group}, fixed by the rounds a case first had
        self.prior = None

    def comparisons(self, data, keys, stage=None):
        """A Comparison a case: all its rounds, or with ``stage`` ({key: ((b0, b1),
        (c0, c1))}) only the processes of that stage."""
        out = []
        for k in keys:
            b = data.get(k, {}).get(self.base, [])
            c = data.get(k, {}).get(self.cand, [])
            if stage is not None:
                (b0, b1), (c0, c1) = stage[k]
                b, c = b[b0:b1], c[c0:c1]
            out.append(vd.Comparison(k, b, c, self.group(data, k)))
        return out

    def group(self, data, key):
        """The prior group of a case: its backend and the decade of its time."""
        if key not in self.groups:
            base_runs = data.get(key, {}).get(self.base, [])
            self.groups[key] = vd.prior_group(protocol.group_of(key), base_runs)
        return self.groups[key]

    def set_prior(self, data, keys, stage):
        """The prior (the noise of each backend's cases) from the first stage,
        where every case was measured; later looks reuse it."""
        self.prior = vd.priors([(list(c.observations()), c.group) for c in self.comparisons(data, keys, stage)])

    def decide(self, data, keys, stage=None):
        # Every look at the pooled data may end a case, so each look is made at
        # alpha / max_stages (Bonferroni over the looks): the chance that any of
        # them raises a false alarm stays under alpha.
        return {v.key: v for v in vd.decide(self.comparisons(data, keys, stage), alpha=self.alpha / self.max_stages,
                                            min_effect=self.min_effect, same_within=self.same_within,
                                            prior=self.prior)}

    def final(self, history, pooled):
        """A verdict once it is decided, else None.

        A change (slower, faster) is final once the pooled rounds show it and
        fresh rounds have been measured since the first stage, pointing the
        same way on their own (their ratio on the same side of 1): a change
        seen once is measured again before it counts. "Same" is final as soon
        as the pooled rounds show it."""
        if pooled.verdict in (vd.SLOWER, vd.FASTER):
            if len(history) < 2:
                return None
            fresh = history[-1].ratio
            if (fresh > 1) == (pooled.verdict == vd.SLOWER):
                pooled.note = f"confirmed by fresh rounds ({len(history)} stages)"
                return pooled
            return None
        if pooled.verdict == vd.SAME:
            pooled.note = ""
            return pooled
        return None

    def results(self, keys, final, pooled):
        """The final verdicts: those decided, and the others undecided on the
        pooled rounds, with the rounds a side that would decide them."""
        results = {}
        for k in keys:
            if k in final:
                results[k] = final[k]
                continue
            v = pooled[k]
            unconfirmed = v.verdict if v.verdict in (vd.SLOWER, vd.FASTER) else ""
            v.verdict = vd.UNDECIDED
            if v.rounds_needed is None and not math.isnan(v.sd):
                q = vd.t_quantile(1 - self.alpha / self.max_stages / 2, v.dof)
                v.rounds_needed = vd.rounds_to_decide(math.log(v.ratio), v.sd, q,
                                                      math.log1p(self.min_effect), math.log1p(self.same_within))
            v.note = f"unconfirmed {unconfirmed}" if unconfirmed else ""
            results[k] = v
        return results


class Gate:
    """Measures and decides one comparison; also used by studies/calibrate.py."""

    def __init__(self, base, cand, bench, folder, budget_s=DEFAULT_BUDGET_MIN * 60, long_s=DEFAULT_LONG,
                 alpha=vd.ALPHA, min_effect=vd.MIN_EFFECT, same_within=vd.SAME_WITHIN,
                 env_nobuild=None, log=print, max_stages=3):
        self.base, self.cand = base, cand
        self.alpha, self.min_effect, self.same_within = alpha, min_effect, same_within
        self.budget_s, self.long_s = budget_s, long_s
        self.log = log
        self.max_stages = max_stages
        self.session = protocol.Session(folder, [base, cand], bench, env_nobuild=env_nobuild, log=log)
        self.stages = []  # per stage: {key: (first process index, count) per side}
        self.over_budget = {}  # cases the budget left out: {key: seconds a process}
        self.rule = Rule(base, cand, alpha=alpha, min_effect=min_effect, same_within=same_within,
                         max_stages=max_stages)
        self.started = None

    # -- measuring ---------------------------------------------------------

    def _counts(self):
        d = self.session.data
        return {k: (len(d[k].get(self.base, [])), len(d[k].get(self.cand, []))) for k in d}

    def _stage(self, keys, rounds, first=False):
        before = self._counts()
        if first:
            self._first_stage()
        else:
            for _ in range(rounds):
                self.session.round(keys)
        after = self._counts()
        stage = {}
        for k, (nb, nc) in after.items():
            b0, c0 = before.get(k, (0, 0))
            if nb > b0 or nc > c0:
                stage[k] = ((b0, nb), (c0, nc))
        self.stages.append(stage)
        return stage

    def plan(self, known):
        """(replicated, single, over budget) from the cases' known costs
        (seconds a process, tools/protocol.py's cache of earlier sessions):
        in ascending cost, a case gets a process a side in each of two rounds
        if that fits the budget (less a share kept for confirmations), else
        one process a side if that fits, else it is not measured."""
        room = (1.0 - CONFIRM_SHARE) * self.budget_s - 2 * ROUND_OVERHEAD
        twice, once, over = [], [], []
        for k in sorted(known, key=lambda k: known[k]):
            c = known[k]
            if 4 * c <= room and c <= self.long_s:
                twice.append(k)
                room -= 4 * c
            elif 2 * c <= room:
                once.append(k)
                room -= 2 * c
            else:
                over.append(k)
        return twice, once, over

    def _first_stage(self):
        """Two rounds in alternating order (A B, then B A). With costs known
        from earlier sessions on this machine, the plan decides which cases
        get both rounds, one, or none (over budget); without, the first round
        measures every case and the second the cheapest the budget affords."""
        known = {k: c for k, c in protocol.load_costs().items() if re.search(self.session.bench, k)}
        if known:
            twice, once, over = self.plan(known)
            self.over_budget = {k: known[k] for k in over}
            if over:
                self.log(f"{len(over)} case(s) do not fit the {self.budget_s / 60:.0f}-minute budget and are not "
                         f"measured (a process takes {min(known[k] for k in over):.0f}-"
                         f"{max(known[k] for k in over):.0f} s): a larger --budget measures them")
            self.log(f"plan: {len(twice)} cases in two rounds, {len(once)} in one "
                     f"(costs from earlier sessions here, {os.path.relpath(protocol.COSTS, ROOT)})")
            # cases new since the costs were recorded run in both rounds
            self.session.round(bench=protocol.excluding(self.session.bench, over))
            new = [k for k in self.session.keys() if k not in known]
            if twice or new:
                self.session.round(sorted(set(twice) | set(new)))
            return
        self.session.round(None)  # every case, one process a side
        selected = self._affordable(self.session.keys())
        self.log(f"second round: {len(selected)} of {len(self.session.keys())} cases fit the budget "
                 f"(the others keep one process a side)")
        if selected:
            self.session.round(selected)

    def _left(self):
        return self.budget_s - (time.time() - self.started)

    def _affordable(self, keys):
        """The cheapest cases whose second round fits in what the budget has
        left, keeping a share of it for the confirmations."""
        room = (1.0 - CONFIRM_SHARE) * self._left() - ROUND_OVERHEAD
        chosen, spent = [], 0.0
        for k in sorted(keys, key=self._cost):
            cost = 2 * self._cost(k)  # a process a side
            if cost > self.long_s * 2 or spent + cost > room:
                continue
            chosen.append(k)
            spent += cost
        return chosen

    def _cost(self, key):
        """Seconds one process of this case takes (set-up included), from the last round."""
        return self.session.cost.get(key, 1.0)

    # -- deciding ----------------------------------------------------------

    def _decide(self, keys, stage=None):
        return self.rule.decide(self.session.data, keys, stage)

    def run(self):
        self.started = time.time()
        stage1 = self._stage(None, 2, first=True)
        keys = sorted(stage1)
        self.rule.set_prior(self.session.data, keys, stage1)
        history = {k: [v] for k, v in self._decide(keys, stage1).items()}
        final = {}
        while True:
            pooled = self._decide(keys)
            open_keys = []
            for k in keys:
                if k in final:
                    continue
                verdict = self.rule.final(history[k], pooled[k])
                if verdict:
                    final[k] = verdict
                else:
                    open_keys.append(k)
            if not open_keys or len(self.stages) >= self.max_stages:
                break
            left = self._left()
            # As many open cases as two more rounds fit: first those the pooled
            # rounds call changed (a change must be confirmed before it counts,
            # and a slowdown decides the exit status), then the undecided ones
            # nearest to a decision per second of measuring, cheapest first.
            fits, cost = [], 2 * ROUND_OVERHEAD
            for k in sorted(open_keys, key=lambda k: self._priority(pooled[k], k)):
                if cost + 4 * self._cost(k) <= left:
                    fits.append(k)
                    cost += 4 * self._cost(k)
            if not fits:
                self.log(f"confirmation of {len(open_keys)} cases does not fit the "
                         f"{max(left, 0):.0f} s of the budget left: stopping")
                break
            open_keys = fits
            self.log(f"confirming {len(open_keys)} cases (stage {len(self.stages) + 1}, ~{cost:.0f} s)")
            stage = self._stage(open_keys, 2)
            for k, v in self._decide(open_keys, stage).items():
                history[k].append(v)
        self.results = self.rule.results(keys, final, self._decide(keys))
        self.history = history
        self.seconds = time.time() - self.started
        return self.results

    def _priority(self, verdict, key):
        """Sort key of an open case for the next confirmation stage."""
        if verdict.verdict in (vd.SLOWER, vd.FASTER):
            return (0, self._cost(key))
        needed = verdict.rounds_needed or vd.MAX_ROUNDS * 2
        return (1, needed * self._cost(key))

    # -- output ------------------------------------------------------------

    def as_json(self):
        return {
            "base": self.base, "candidate": self.cand,
            "base_name": protocol.describe(self.base), "candidate_name": protocol.describe(self.cand),
            "alpha": self.alpha, "min_effect": self.min_effect, "same_within": self.same_within,
            "stages": len(self.stages), "rounds": self.session.rounds, "seconds": round(self.seconds, 1),
            "summary": vd.summary(self.results.values()),
            "over_budget": {k: round(v, 1) for k, v in sorted(self.over_budget.items())},
            "cases": case_rows(self.results, self.session.data, self.base, self.cand, alpha=self.alpha,
                               min_effect=self.min_effect, max_stages=self.max_stages),
        }


def case_rows(results, data, base, cand, alpha=vd.ALPHA, min_effect=vd.MIN_EFFECT, max_stages=3):
    """The report's row of each verdict (``{key: Verdict}``), with each side's
    geometric mean time from ``data`` (``{key: {side: [samples of each
    process]}}``) and the minimum detectable effect at 80% power at the
    gate's level (alpha / max_stages, its looks)."""
    def mean_time(key, side):
        obs = vd.process_observations(data.get(key, {}).get(side, []))
        return math.exp(sum(obs) / len(obs)) if obs else None

    return [dict(key=k, verdict=v.verdict, ratio=v.ratio, lo=v.lo, hi=v.hi, p=v.p,
                 processes=[v.n_base, v.n_cand], samples=[v.samples_base, v.samples_cand],
                 rounds_needed=v.rounds_needed, note=getattr(v, "note", ""),
                 base_s=mean_time(k, base), cand_s=mean_time(k, cand), sd=v.sd, dof=v.dof,
                 mde=v.minimum_detectable_effect(alpha=alpha / max_stages, min_effect=min_effect))
            for k, v in sorted(results.items())]


def stages_of(n):
    """The stage sizes of a case measured n times a side by the gate: a first
    stage of two processes (one where n is odd: a case the plan gave one
    round), then two a stage (tools/gate.py's confirmations)."""
    first = 1 if n % 2 else 2
    return [first] + [2] * ((n - first) // 2) if n else []


def replay(data, base, cand, alpha=vd.ALPHA, min_effect=vd.MIN_EFFECT, same_within=vd.SAME_WITHIN,
           max_stages=3):
    """The gate's verdicts, decided again from recorded rounds (``rounds.json``'s
    ``data``) with the current statistics: the same looks, prior and
    confirmation rule as :meth:`Gate.run`, over the stages each case was
    measured in (:func:`stages_of`). Which cases the gate measured again
    depended on the verdicts it had then, so this is the gate's answer only
    where those stages would be measured again alike."""
    rule = Rule(base, cand, alpha=alpha, min_effect=min_effect, same_within=same_within, max_stages=max_stages)
    keys = sorted(k for k, per in data.items() if per.get(base) and per.get(cand))
    bounds = {}
    for k in keys:
        sides = []
        for side in (base, cand):
            edges, at = [], 0
            for size in stages_of(len(data[k][side])):
                edges.append((at, at + size))
                at += size
            sides.append(edges)
        bounds[k] = sides

    def upto(look):
        return {k: {base: data[k][base][:bounds[k][0][min(look, len(bounds[k][0])) - 1][1]],
                    cand: data[k][cand][:bounds[k][1][min(look, len(bounds[k][1])) - 1][1]]} for k in keys}

    first = {k: (bounds[k][0][0], bounds[k][1][0]) for k in keys}
    rule.set_prior(data, keys, first)
    history = {k: [v] for k, v in rule.decide(data, keys, first).items()}
    final = {}
    looks = max(max(len(b[0]), len(b[1])) for b in bounds.values()) if keys else 0
    pooled = {}
    for look in range(1, min(looks, max_stages) + 1):
        pooled = rule.decide(upto(look), keys)
        for k in keys:
            if k not in final:
                verdict = rule.final(history[k], pooled[k])
                if verdict:
                    final[k] = verdict
        nxt = {k: (bounds[k][0][look], bounds[k][1][look]) for k in keys
               if k not in final and len(bounds[k][0]) > look and len(bounds[k][1]) > look}
        for k, v in rule.decide(data, list(nxt), nxt).items() if nxt else ():
            history[k].append(v)
    return rule.results(keys, final, pooled)


def fmt_time(s):
    if s is None or s != s:
        return "n/a"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g}{unit}"
    return f"{s * 1e9:.3g}ns"


def markdown(report):
    """asv-compare-style tables, one per verdict, then the evidence."""
    lines = [f"# Gate: {report['base_name']} -> {report['candidate_name']}", ""]
    s = report["summary"]
    lines.append(f"{s['slower']} slower, {s['faster']} faster, {s['same']} same, {s['undecided']} undecided "
                 f"({len(report['cases'])} cases; {report['rounds']} interleaved rounds in {report['stages']} "
                 f"stages, {report['seconds'] / 60:.1f} min; moderated t-test on each process's fastest sample, "
                 f"{100 * (1 - report['alpha']):g}% intervals, a change must clear "
                 f"{100 * report['min_effect']:g}% and be confirmed by fresh rounds; 'same' = within "
                 f"{100 * report['same_within']:g}%)")
    if report.get("over_budget"):
        over = report["over_budget"]
        lines += ["", f"Not measured ({len(over)}): over the budget, each process "
                      f"{min(over.values()):.0f}-{max(over.values()):.0f} s here; a larger --budget measures them: "
                      + ", ".join(sorted(over))]
    titles = {vd.SLOWER: "Slower (confirmed)", vd.FASTER: "Faster (confirmed)",
              vd.UNDECIDED: "Undecided: measure more", vd.SAME: "Same"}
    for verdict in (vd.SLOWER, vd.FASTER, vd.UNDECIDED, vd.SAME):
        rows = [c for c in report["cases"] if c["verdict"] == verdict]
        if not rows:
            continue
        lines += ["", f"## {titles[verdict]} ({len(rows)})", "",
                  "| before | after | ratio | interval | processes | MDE | note | benchmark |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in sorted(rows, key=lambda c: -(c["ratio"] if c["ratio"] == c["ratio"] else 0)):
            note = c["note"] or ""
            if verdict == vd.UNDECIDED:
                note = (note + "; " if note else "") + (
                    f"~{c['rounds_needed']} rounds a side would decide" if c["rounds_needed"]
                    else "more than this machine can resolve")
            mde = f"{100 * c['mde']:.0f}%" if c["mde"] == c["mde"] else "n/a"
            lines.append(f"| {fmt_time(c['base_s'])} | {fmt_time(c['cand_s'])} | {c['ratio']:.3f} | "
                         f"{c['lo']:.3f}-{c['hi']:.3f} | {c['processes'][0]}+{c['processes'][1]} | {mde} | "
                         f"{note} | {c['key']} |")
    work = report.get("instructions")
    if work is None:
        hint = instructions.hint(report["base_name"], report["candidate_name"],
                                 [(c["key"], c["verdict"], c["ratio"]) for c in report["cases"]])
        if hint:
            lines += ["", hint]
    else:
        lines += ["", work_paragraph(work)]
    return "\n".join(lines) + "\n"


def work_note(row):
    """A case's instruction verdict, for the note column."""
    if row["verdict"] in ("failed", "skipped"):
        return f"work: {row['verdict']} ({row['note']})"
    return f"work: {row['ratio']:.3f}x instructions, {vd.work_word(row['verdict'])}"


def work_paragraph(work):
    """What --instructions found, in a few lines."""
    if work.get("error"):
        return f"Instruction counts: not made: {work['error']}"
    if not work["cases"]:
        return "Instruction counts: no mlx_cpu case to count."
    tally = {}
    for row in work["cases"].values():
        word = vd.work_word(row["verdict"])
        tally[word] = tally.get(word, 0) + 1
    lines = [f"Work verdicts of {len(work['cases'])} mlx_cpu cases (instructions of one call under callgrind, "
             f"a side; same within 1% at 1 M instructions or more, 5% below; {work['seconds']:.0f} s; the "
             f"functions that changed: {work['folder']}/verdicts.md): "
             + ", ".join(f"{n} {word}" for word, n in sorted(tally.items()))
             + ". A time change with the same work is not in the instructions: `--annotate` of "
               "tools/instructions.py shows both sides' hottest machine code."]
    for key, row in sorted(more_work({"instructions": work}), key=lambda kr: -kr[1]["ratio"]):
        fn = ""
        if row.get("functions"):
            name, before, after = row["functions"][0]
            fn = (f", most in {instructions.short_name(name, 80)} ({instructions.fmt_count(before)} -> "
                  f"{instructions.fmt_count(after)})")
        lines.append(f"- more work: {row['ratio']:.3f}x instructions{fn}: {key}")
    return "\n".join(lines)


def count_work(report, names, commits, folder, log=print, count_run=None):
    """The work verdicts of the report's ``mlx_cpu`` ops.py cases ({"cases":
    {key: row}, "seconds", "folder"}); each case's note gets its work.
    Raises instructions.InstructionsError."""
    keys = [c["key"] for c in report["cases"]
            if c["key"].startswith("ops.") and any(c["key"].endswith(f"'{b}')") for b in instructions.CPU_BACKENDS)]
    work = {"cases": {}, "seconds": 0.0, "folder": os.path.relpath(os.path.join(folder, "instructions"), ROOT)}
    todo = instructions.cases(protocol.case_regex(keys)) if keys else []
    if todo:
        log(f"counting the instructions of {len(todo)} mlx_cpu case(s) on both sides (valgrind)")
        run = (count_run or instructions.count_run)(list(names), list(commits), todo,
                                                    os.path.join(folder, "instructions"), calls=1, log=log,
                                                    use_store=True)
        work["seconds"] = run["seconds"]
        work["cases"] = {r["key"]: {k: r[k] for k in ("verdict", "ratio", "lo", "hi", "base", "cand", "note",
                                                        "functions")}
                         for r in run["pairs"][0]["cases"]}
    for c in report["cases"]:
        if c["key"] in work["cases"]:
            c["note"] = "; ".join(x for x in (c["note"], work_note(work["cases"][c["key"]])) if x)
    return work


def main(argv=None):
    ap = cli.parser(__doc__)
    ap.add_argument("base", help="ledger name of the base (e.g. v0.32.4)")
    ap.add_argument("candidate", help="ledger name of the candidate (e.g. candidate/my-pr, v0.32.5)")
    ap.add_argument("-b", "--bench", help="asv -b regex (default: ops.py on the backends this machine has)")
    ap.add_argument("--backends", help="comma-separated backends for the default regex")
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET_MIN,
                    help=f"minutes for measuring; confirmation stops when it would exceed them "
                         f"(default {DEFAULT_BUDGET_MIN:g})")
    ap.add_argument("--long", type=float, default=DEFAULT_LONG,
                    help=f"seconds a process past which a case keeps one process a side (default {DEFAULT_LONG:g})")
    ap.add_argument("--alpha", type=float, default=vd.ALPHA)
    ap.add_argument("--min-effect", type=float, default=vd.MIN_EFFECT)
    ap.add_argument("--same-within", type=float, default=vd.SAME_WITHIN)
    ap.add_argument("--out", help="folder for this run (default .asv/gate/<time>-<base>-<candidate>)")
    cli.add_format(ap)
    ap.add_argument("--no-instructions", dest="instructions", action="store_false",
                    help="leave out the work verdicts (instruction counts of the mlx_cpu cases under valgrind)")
    ap.add_argument("--instructions", action="store_true", default=True, help=argparse.SUPPRESS)  # the default
    args = ap.parse_args(argv)
    work_off = ""
    if args.instructions and not sys.platform.startswith("linux"):
        work_off = f"not made: valgrind counts on Linux only, not on {sys.platform}"
        args.instructions = False
    try:
        if args.instructions:
            instructions.check_tools()  # before the budget is spent, not after
        ledger.ensure(log=lambda m: print(m, file=sys.stderr))
        base, cand = protocol.resolve(args.base), protocol.resolve(args.candidate)
    except instructions.InstructionsError as e:
        print(f"gate: {e}; or --no-instructions for the time verdicts alone", file=sys.stderr)
        return 2
    except (ledger.LedgerError, protocol.ProtocolError) as e:
        print(f"gate: {e}", file=sys.stderr)
        return 2
    if base == cand:
        print(f"gate: {args.base} and {args.candidate} are the same commit; for an A/A comparison add a "
              f"twin: python tools/ledger.py --candidate aa --base {args.base} --same-as {args.base}",
              file=sys.stderr)
        return 2
    bench = args.bench
    if not bench:
        backends = args.backends.split(",") if args.backends else detected_backends()
        bench = protocol.bench_regex(backends)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{args.base}-{args.candidate}")
    folder = args.out or os.path.join(ROOT, ".asv", "gate", f"{protocol.stamp()}-{safe}")
    log = lambda m: print(f"gate: {m}", file=sys.stderr, flush=True)  # noqa: E731
    gate = Gate(base, cand, bench, folder, budget_s=args.budget * 60, long_s=args.long, alpha=args.alpha,
                min_effect=args.min_effect, same_within=args.same_within, log=log)
    try:
        gate.run()
    except protocol.ProtocolError as e:
        print(f"gate: {e}", file=sys.stderr)
        return 2
    report = gate.as_json()
    os.makedirs(folder, exist_ok=True)

    def save():
        with open(os.path.join(folder, "verdicts.json"), "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.join(folder, "verdicts.md"), "w") as f:
            f.write(markdown(report))

    save()  # the time verdicts are kept whatever the counting does
    counting_failed = False
    if args.instructions:
        try:
            report["instructions"] = count_work(report, (args.base, args.candidate), (base, cand), folder, log=log)
        except (instructions.InstructionsError, KeyboardInterrupt) as e:
            why = str(e) or "interrupted"
            log(f"work verdicts: {why}; the time verdicts stand")
            report["instructions"] = {"error": why}
            counting_failed = True
        save()
    elif work_off:
        report["instructions"] = {"error": work_off}
        save()
    print(json.dumps(report, indent=1) if args.format == "json" else markdown(report))
    log(f"verdicts in {os.path.relpath(folder, ROOT)}/verdicts.md")
    return exit_status(report, counting_failed)


def more_work(report):
    """The cases the work verdicts call more work: [(key, row)]."""
    work = report.get("instructions") or {}
    return [(k, r) for k, r in (work.get("cases") or {}).items() if r["verdict"] == vd.SLOWER]


def exit_status(report, counting_failed=False):
    """1 on a confirmed slowdown or more work, 2 if the counting failed, else 0."""
    if report["summary"][vd.SLOWER] or more_work(report):
        return 1
    return 2 if counting_failed else 0

if __name__ == "__main__":
    sys.exit(main())
