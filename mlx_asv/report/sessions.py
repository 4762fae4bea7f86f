"""Same-run evidence for the report: the rounds that mlx_asv/measure/protocol.py kept.

A release-to-release change in asv's ``results/`` usually compares two
results measured at different times (cross-run): on a shared machine that
is no evidence either way. Where both releases were measured in one
interleaved session (the main job, ``tools/gate.py``), that session's
``rounds.json`` has every process's samples, and the gate's rule
(tools/gate.py ``replay``: mlx_asv/decide/verdicts.py's test, a change counted
once fresh rounds confirm it) decides the pair. Calibration runs (``.asv/calibration/``) are never used:
their candidates are stretched on purpose.
"""

from __future__ import annotations

import glob
import json
import os


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
            # Decided as the gate decides (its looks at alpha/3; a change
            # counts once fresh rounds confirm it): the main job confirms the
            # same way, so its summary, this page and the report agree.
            from mlx_asv.decide.gate import replay

            found_here = replay(data.get("data", {}), commit_a, commit_b)
            if found_here:
                found = (found_here, os.path.dirname(path))
                break
        self._cache[pair] = found
        return found


def calibration_mde(root=ROOT):
    """{case key: minimum detectable effect} from studies/calibrate.py's gate runs
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
