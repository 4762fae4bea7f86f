"""The report's statistics: geometric means, quantiles, confidence-interval
overlap, release-to-release changes and their flags, the measured noise, and
the per-family averages over the cases every compared backend shares.

A *point* is one asv result as :class:`reporting.results.Results` keeps it:
a dict with ``status`` ('ok', 'failed', 'skipped'), ``value`` (seconds),
``ci`` (asv's 99% interval, seconds), ``q`` (the samples' 25% and 75%
quantiles, seconds), ``number`` and ``repeat``.
"""

from __future__ import annotations

import math
import statistics

from mlx_asv.report.results import finite


def geomean(values):
    """The geometric mean of the positive values (None and others are left out);
    None if there are none."""
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def quantile(values, q):
    """The q-quantile of values, interpolated linearly (None if empty)."""
    values = sorted(values)
    if not values:
        return None
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def ci_overlap(a, b):
    """True/False if both 99% CIs are known (finite), else None."""
    (a0, a1), (b0, b1) = a, b
    if not all(finite(x) for x in (a0, a1, b0, b1)):
        return None
    return not (a1 < b0 or b1 < a0)


def ms(point):
    """A point's time in ms, or None unless it is a result ('ok')."""
    return point["value"] * 1e3 if point and point["status"] == "ok" else None


def spread(point):
    """The spread asv recorded inside one result: (q75 - q25) / median, or None
    (no result, no quantiles, or a single sample)."""
    if not point or point["status"] != "ok":
        return None
    q25, q75 = point["q"]
    if finite(q25) and finite(q75) and point["value"] > 0 and (point["repeat"] or 0) > 1:
        return (q75 - q25) / point["value"]
    return None


def change_entries(series, threshold):
    """Changes along one row of the release table.

    ``series``: [(release, point or None)] in release order. Each entry has
    the time (ms), the status ('missing' without a point), the change from the
    previous release with a time, and the flag: 'slower'/'faster' when the
    change is at least ``threshold`` and the two 99% intervals do not overlap
    (or are unknown: then ``confirmed`` is None).
    """
    prev = None
    entries = []
    for release, p in series:
        value = ms(p)
        e = {"release": release, "ms": value, "status": p["status"] if p else "missing",
             "change": None, "flag": None, "confirmed": None}
        if value is not None and prev is not None:
            pv, pp = prev
            e["change"] = value / pv - 1
            overlap = ci_overlap(pp["ci"], p["ci"])
            e["confirmed"] = None if overlap is None else not overlap
            if abs(e["change"]) >= threshold and overlap is not True:
                e["flag"] = "slower" if e["change"] > 0 else "faster"
        if value is not None:
            prev = (value, p)
        entries.append(e)
    return entries


def noise(points, change_rows, backends, control_prefix="torch_"):
    """Measured noise per backend.

    ``points``: [(backend, point)] of the selection; ``change_rows``: the rows
    of the release table (dicts with ``backend`` and ``releases``, the entries
    of :func:`change_entries`). Per backend: the median within-result spread,
    and the size of the release-to-release changes (median, 90th percentile)
    and how many are flagged. A backend whose name starts with
    ``control_prefix`` (torch: pinned) is the control.
    """
    out = []
    for bk in backends:
        spreads = [s for k, p in points if k == bk for s in [spread(p)] if s is not None]
        deltas, flagged = [], 0
        for row in change_rows:
            if row["backend"] != bk:
                continue
            for e in row["releases"]:
                if e["change"] is not None:
                    deltas.append(abs(e["change"]))
                    flagged += bool(e["flag"])
        if not spreads and not deltas:
            continue
        out.append({
            "backend": bk, "control": bk.startswith(control_prefix),
            "results": len(spreads), "median_iqr": statistics.median(spreads) if spreads else None,
            "changes": len(deltas),
            "median_change": statistics.median(deltas) if deltas else None,
            "p90_change": quantile(deltas, 0.9) if deltas else None,
            "flagged": flagged,
        })
    return out


def family_average(times, backends, pairs):
    """One family's row of the average table, comparing like with like.

    ``times``: {case: {backend: ms or None}}, the family's cases; ``backends``:
    the table's columns; ``pairs``: the speedup columns (A, B). The row's
    backends are those with a result for at least one of the family's cases;
    the averages run over the cases that have a result on *every* one of them
    (``shared``), so each backend's geometric mean covers the same cases and
    each speedup (the geometric mean of the per-case speedups over those cases)
    is the ratio of the row's means.
    """
    def has(case, bk):
        v = times[case].get(bk)
        return v is not None and v > 0

    row_backends = [bk for bk in backends if any(has(c, bk) for c in times)]
    shared = [c for c in times if row_backends and all(has(c, bk) for bk in row_backends)]
    geo = {bk: geomean([times[c][bk] for c in shared]) if bk in row_backends else None
           for bk in backends}
    speed = {f"{x} vs {y}": geomean([times[c][y] / times[c][x] for c in shared])
             if x in row_backends and y in row_backends else None for x, y in pairs}
    return {"backends": row_backends, "shared": shared, "geomean_ms": geo, "speedups": speed}
