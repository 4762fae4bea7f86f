"""The report's plots, drawn with matplotlib (headless: the Agg canvas, no pyplot).

One plot per op family: time (ms, log scale) against MLX release (the ledger's
order, as categories), a line per (backend, case), coloured by backend and
marked by case; a line joins the releases that have a result. Each point
carries the spread asv recorded for that result as an error bar: the samples'
interquartile range (``stats_q_25`` .. ``stats_q_75``), or asv's 99%
confidence interval (``stats_ci_99_a`` .. ``stats_ci_99_b``) where the
quantiles are missing; no bar where neither is recorded. Each plot is written
as PNG and as SVG.

:func:`family_series` returns exactly what :func:`figure` draws, so tests can
check the plotted values and bars without reading pixels.
"""

from __future__ import annotations

import os
import re

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from mlx_asv.report.results import finite

# Colour per backend (the Okabe-Ito colour-blind-safe palette), marker per case.
BACKEND_COLORS = {
    "mlx_cpu": "#0072B2", "mlx_gpu": "#D55E00", "mlx_gpu_compile": "#CC79A7",
    "torch_cpu": "#009E73", "torch_cuda": "#E69F00", "torch_mps": "#56B4E9",
}
EXTRA_COLORS = ["#777777", "#000000", "#962828", "#282896"]
MARKERS = ["o", "s", "^", "D", "x", "+", "v", "P", "*", "<", ">", "h"]
LINESTYLES = ["-", "--", ":", "-."]


def backend_color(name, order=()):
    if name in BACKEND_COLORS:
        return BACKEND_COLORS[name]
    extra = [b for b in order if b not in BACKEND_COLORS]
    index = extra.index(name) if name in extra else 0
    return EXTRA_COLORS[index % len(EXTRA_COLORS)]


def spread_ms(point):
    """The recorded spread of one result, in ms: (low, high, source), source
    'iqr' (the samples' 25%..75% quantiles) or 'ci99' (asv's 99% interval);
    None where neither is recorded (finite)."""
    q25, q75 = point.get("q") or (None, None)
    if finite(q25) and finite(q75):
        return q25 * 1e3, q75 * 1e3, "iqr"
    a, b = point.get("ci") or (None, None)
    if finite(a) and finite(b):
        return a * 1e3, b * 1e3, "ci99"
    return None


def family_series(report):
    """{family: [series]} for the report's release table, each series a dict:
    backend, case, label, and per release with a result: ``releases``, ``x``
    (the release's index on the axis), ``y`` (ms), ``low``/``high`` (the
    recorded spread, ms; equal to y where none) and ``spread`` ('iqr', 'ci99'
    or None)."""
    out = {}
    for row in report.changes():
        s = {"backend": row["backend"], "case": row["case"],
             "label": row["backend"] if row["case"] == "-" else f"{row['backend']}: {row['case']}",
             "releases": [], "x": [], "y": [], "low": [], "high": [], "spread": []}
        for i, e in enumerate(row["releases"]):
            if e["ms"] is None or e["ms"] <= 0:
                continue
            point = report.res.points[(e["release"], row["benchmark"], row["case"], row["backend"])]
            sp = spread_ms(point)
            low, high, source = sp if sp else (e["ms"], e["ms"], None)
            s["releases"].append(e["release"])
            s["x"].append(i)
            s["y"].append(e["ms"])
            s["low"].append(min(low, e["ms"]))
            s["high"].append(max(high, e["ms"]))
            s["spread"].append(source)
        out.setdefault(row["family"], []).append(s)
    return out


def figure(title, releases, series):
    """A matplotlib Figure of one family (not drawn yet: save it, or inspect
    its Axes)."""
    cases = list(dict.fromkeys(s["case"] for s in series))
    backends = list(dict.fromkeys(s["backend"] for s in series))
    shown = [s for s in series if s["y"]]
    legend_rows = len(shown)
    ncol = 1 if legend_rows <= 8 else 2
    height = 4.8 + 0.22 * -(-legend_rows // ncol)
    fig = Figure(figsize=(10, height), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.09, 1 - 4.0 / height, 0.88, 3.4 / height])
    ax.set_title(title, fontsize=12)
    if not shown:
        ax.text(0.5, 0.5, "no results", transform=ax.transAxes, ha="center", va="center")
    for s in shown:
        k = cases.index(s["case"])
        ax.errorbar(s["x"], s["y"],
                    yerr=[[y - lo for y, lo in zip(s["y"], s["low"])],
                          [hi - y for y, hi in zip(s["y"], s["high"])]],
                    color=backend_color(s["backend"], backends), marker=MARKERS[k % len(MARKERS)],
                    linestyle=LINESTYLES[(k // len(MARKERS)) % len(LINESTYLES)],
                    markersize=5, linewidth=1.5, capsize=3, elinewidth=1, label=s["label"])
    if shown:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xticks(range(len(releases)))
    ax.set_xticklabels(releases, rotation=45 if len(releases) > 8 else 0,
                       ha="right" if len(releases) > 8 else "center", fontsize=9)
    ax.set_xlim(-0.5, len(releases) - 0.5)
    ax.set_xlabel("MLX release")
    ax.set_ylabel("time (ms, log scale)")
    ax.grid(True, which="major", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    if shown:
        fig.legend(*ax.get_legend_handles_labels(), loc="upper left", ncol=ncol, fontsize=8,
                   frameon=False, bbox_to_anchor=(0.08, 1 - 4.75 / height),
                   title="backend: case (bars: the samples' interquartile range, else asv's 99% interval)", title_fontsize=8,
                   alignment="left")
    return fig


def file_stem(family):
    return "plot_" + re.sub(r"[^A-Za-z0-9_.-]", "_", family)


def plot_families(report, folder):
    """Write one PNG and one SVG per op family with results; return
    [(family, png path, svg path)]."""
    os.makedirs(folder, exist_ok=True)
    written = []
    for fam, series in family_series(report).items():
        if not any(s["y"] for s in series):
            continue
        fig = figure(f"{fam}: time vs MLX release", report.releases, series)
        stem = os.path.join(folder, file_stem(fam))
        # No dates or random ids in the files: the same results give the same files.
        with matplotlib.rc_context({"svg.hashsalt": "mlx-asv", "svg.fonttype": "none"}):
            fig.savefig(stem + ".png", format="png", metadata={"Software": None})
            fig.savefig(stem + ".svg", format="svg", metadata={"Date": None})
        written.append((fam, stem + ".png", stem + ".svg"))
    return written
