"""Same-run evidence for the report: the rounds that tools/protocol.py kept.

A release-to-release change in asv's ``results/`` usually compares two
results measured at different times (cross-run): on a shared machine that
is no evidence either way. Where both releases were measured in one
interleaved session (the main job, ``tools/gate.py``), that session's
``rounds.json`` has every process's samples, and reporting/verdicts.py can
decide the pair. Calibration runs (``.asv/calibration/``) are never used:
their candidates are stretched on purpose.
"""

from __future__ import annotations

import glob
import json
import os

from reporting import verdicts as vd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where sessions are kept, newest first when read: the main job's, the gate's,
# and the torch matrix's (tools/torch_matrix.py --compare: its sides are
# '<commit>@torch<version>', one MLX release in several torch environments).
SESSION_GLOBS = (os.path.join(".asv", "main", "*", "rounds.json"), os.path.join(".asv", "gate", "*", "rounds.json"),
                 os.path.join(".asv", "torch", "*", "rounds.json"))


class Sessions:
    def __init__(self, root=ROOT):
        self.sessions = []
        paths = [p for g in SESSION_GLOBS for p in glob.glob(os.path.join(root, g))]
        for path in sorted(paths, key=os.path.getmtime, reverse=True):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                continue  # an interrupted write: the session is not evidence
            self.sessions.append((path, data))
        self._cache = {}

    def verdicts(self, commit_a, commit_b):
        """({case key: Verdict}, session folder) from the newest session that
        measured both commits, or ({}, None)."""
        pair = (commit_a, commit_b)
        if pair in self._cache:
            return self._cache[pair]
        found = ({}, None)
        for path, data in self.sessions:
            commits = data.get("commits", [])
            if commit_a not in commits or commit_b not in commits:
                continue
            from tools.protocol import prior_group  # the gate's grouping of the cases

            comps = [vd.Comparison(k, v.get(commit_a, []), v.get(commit_b, []), prior_group(k, v.get(commit_a)))
                     for k, v in sorted(data.get("data", {}).items()) if v.get(commit_a) and v.get(commit_b)]
            if comps:
                found = ({v.key: v for v in vd.decide(comps)}, os.path.dirname(path))
                break
        self._cache[pair] = found
        return found


def calibration_mde(root=ROOT):
    """{case key: minimum detectable effect} from tools/calibrate.py's gate runs
    on this machine (the median over the runs), or {} where none ran."""
    found = {}
    for path in glob.glob(os.path.join(root, ".asv", "calibration", "*", "calibration.json")):
        try:
            with open(path, encoding="utf-8") as f:
                run = json.load(f)
        except (OSError, ValueError):
            continue
        if run.get("kind") != "gate":
            continue
        for c in run.get("cases", []):
            mde = c.get("mde")
            if isinstance(mde, (int, float)) and mde == mde:
                found.setdefault(c["key"], []).append(mde)
    return {k: sorted(v)[len(v) // 2] for k, v in found.items()}
