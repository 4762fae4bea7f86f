"""Where a GPU asv run's wall time went, and how two runs' time_ values compare (issue 27, fourth session).

    python -m studies.gpu27.walltime durations RESULTS.json [...]
    python -m studies.gpu27.walltime compare BASE.json CAND.json

``durations``: asv's recorded seconds of each benchmark (its ``duration`` column, one process a
case, fork to result) summed by kind: ops.py's time_ benchmarks (by backend, and split into the
families that keep asv's warm-up, ``warmup_time`` not 0, and the ``_Slow`` ones, which have none),
the device track's case processes, every ``<setup_cache ...>`` (the device track's one measuring
process), and the span from the first benchmark's start to the last one's end.

``compare``: for every time_ benchmark recorded in both files, the ratio of its fastest sample
(CAND / BASE), its median over the cases of each group (the families with a warm-up, and the
``_Slow`` families as the control: a run-to-run drift moves both alike). One process a case a
run, so a single ratio scatters by the spread between processes (docs/gpu-device-measure.md); only
a group's median tells.
"""

from __future__ import annotations

import ast
import json
import re
import statistics
import sys

NAME = re.compile(r"^(\w+)\.(\w+)\.(\w+)$")


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _warm_families():
    """{ops class name: True where asv warms it up before its samples (warmup_time != 0)}."""
    from benchmarks import ops

    out = {}
    for name in dir(ops):
        cls = getattr(ops, name)
        if isinstance(cls, type) and getattr(cls, "cases", None):
            out[name] = getattr(cls, "warmup_time", -1) != 0
    return out


def rows(data):
    """(benchmark name, params tuple, duration or None, started_at or None, samples or None, result)."""
    cols = data["result_columns"]
    for bench, value in data["results"].items():
        got = dict(zip(cols, value))
        params = got.get("params") or []
        combos = [()]
        for p in params:
            combos = [c + (x,) for c in combos for x in p]
        results = got.get("result")
        if not isinstance(results, list):
            results = [results] * len(combos)
        samples = got.get("samples") or [None] * len(combos)
        for i, combo in enumerate(combos):
            yield (bench, tuple(ast.literal_eval(x) for x in combo), got.get("duration"), got.get("started_at"),
                   samples[i] if i < len(samples) else None, results[i] if i < len(results) else None)


def durations(data):
    warm = _warm_families()
    sums, counts, spans = {}, {}, []
    seen = set()
    for bench, params, dur, start, _, _ in rows(data):
        if bench in seen:
            continue  # asv records one duration a benchmark (all its params' processes together)
        seen.add(bench)
        m = NAME.match(bench)
        if m and m.group(1) == "ops" and m.group(3).startswith("time_"):
            kind = "ops time_, " + ("with warm-up" if warm.get(m.group(2), True) else "_Slow (no warm-up)")
        elif m and m.group(1) == "device":
            kind = "device track case processes"
        else:
            kind = "other"
        if dur is not None:
            sums[kind] = sums.get(kind, 0.0) + dur
            counts[kind] = counts.get(kind, 0) + 1
        if start is not None and dur is not None:
            spans.append((start / 1000.0, start / 1000.0 + dur))
    for key, dur in data.get("durations", {}).items():
        sums[key] = dur
        counts[key] = 1
    return sums, counts, (max(e for _, e in spans) - min(s for s, _ in spans)) if spans else None


def compare(base, cand):
    warm = _warm_families()
    b = {(bench, params): s for bench, params, _, _, s, _ in rows(base) if s}
    groups = {}
    for bench, params, _, _, s, _ in rows(cand):
        m = NAME.match(bench)
        if not (s and m and m.group(1) == "ops" and m.group(3).startswith("time_")) or (bench, params) not in b:
            continue
        ratio = min(s) / min(b[(bench, params)])
        group = ("with warm-up" if warm.get(m.group(2), True) else "_Slow") + f", {params[-1]}"
        groups.setdefault(group, []).append(ratio)
    return groups


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[0] == "durations":
        for path in argv[1:]:
            sums, counts, span = durations(_load(path))
            print(path)
            for key in sorted(sums):
                print(f"  {key}: {sums[key]:.1f} s ({counts[key]} benchmark(s))")
            if span is not None:
                print(f"  first start to last end: {span:.1f} s")
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        for group, ratios in sorted(compare(_load(argv[1]), _load(argv[2])).items()):
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
            print(f"{group}: {len(ratios)} cases, fastest sample cand/base median {statistics.median(ratios):.3f} "
                  f"(quartiles {q[0]:.3f}-{q[2]:.3f})")
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
