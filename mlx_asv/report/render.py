"""Rendering a report (reporting.report.Report): Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

SPEEDUP_NOTE = (
    "Speedup of A over B (column `A vs B`) = time_B / time_A, shown as an x-factor: "
    "`2.00x` means A takes half of B's time, `0.50x` that A takes twice as long. "
    "The seed tables used two formulas under the same name: 000/001 print "
    "time_B / time_A - 1 as a percentage (+100% = 2x; the same quantity as here, minus one), "
    "but 002 prints (time_B - time_A) / time_B (= 1 - time_A / time_B), the share of B's time "
    "saved, which is wrong as a speedup: it can never exceed 1 (a 2x speedup shows 0.50, "
    "a 100x one 0.99) and is unbounded below (2x slower shows -1.00), so it is not symmetric "
    "and not comparable with 000's numbers."
)
AVERAGE_NOTE = (
    "Per op family, like is compared with like: each row's averages run over the same cases, "
    "those with a result on every backend that has results in that row (`n/a`: the backend has "
    "no result in the family). Column `cases`: how many of the family's cases that is (`1 of 3`: "
    "the other cases lack a result on one of the row's backends, and are left out of every "
    "column of the row). Times: the geometric mean of those cases' times (ms) on each backend; "
    "speedups: the geometric mean of their per-case speedups, which is the ratio of the row's "
    "times (the seed's arithmetic mean of times lets the slowest case decide; a geometric mean "
    "weighs every case alike)."
)


def fmt_ms(value):
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_x(value):
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_pct(value):
    return "" if value is None else f"{value * 100:+.0f}%"


def fmt_cases(shared, total):
    return str(total) if shared == total else f"{shared} of {total}"


def cell(point):
    """A detailed-table cell: ms, 'n/a' (skipped or not run) or 'failed'."""
    if point is None or point["status"] == "skipped":
        return "n/a"
    if point["status"] == "failed":
        return "failed"
    return fmt_ms(point["value"] * 1e3)


def md_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        cells = []
        for i, (v, w) in enumerate(zip(r, widths)):
            cells.append(str(v).ljust(w) if i == 0 or (i == 1 and headers[1] == "backend")
                         else str(v).rjust(w))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The tables as cells: (headers, rows)
# --------------------------------------------------------------------------


def detailed_table(report):
    headers, raw = report.detailed()
    cols = [h for h in headers[1:] if " vs " not in h]
    mde_cols = [bk for bk in cols if any(r["mde"].get(bk) is not None for r in raw)]
    rows = []
    for r in raw:
        points = [report.res.points.get((report.release, r["benchmark"], r["case"], bk)) for bk in cols]
        rows.append([r["operation"]] + [cell(p) for p in points]
                    + [fmt_x(v) for v in r["speedups"].values()]
                    + [fmt_pct(r["mde"][bk]).lstrip("+") if r["mde"].get(bk) is not None else "n/a"
                       for bk in mde_cols])
    return headers + [f"{bk} MDE" for bk in mde_cols], rows


def average_table(report):
    headers, raw = report.average()
    rows = [[r["family"], fmt_cases(r["shared_cases"], r["cases"])]
            + [fmt_ms(v) for v in r["geomean_ms"].values()]
            + [fmt_x(v) for v in r["speedups"].values()] for r in raw]
    return headers, rows


# Same-run verdicts (mlx_asv/decide/verdicts.py) in the release table.
VERDICT_MARKS = {"slower": "▲", "faster": "▼", "same": "=", "undecided": "~"}


def release_table(report, changes=None):
    headers = ["Operation", "backend"] + list(report.releases)
    rows = []
    for row in (changes if changes is not None else report.changes()):
        cells = [row["operation"], row["backend"]]
        for e in row["releases"]:
            if e["ms"] is None:
                cells.append({"missing": "", "skipped": "n/a"}.get(e["status"], e["status"]))
                continue
            text = fmt_ms(e["ms"])
            if e["change"] is not None:
                text += f" ({fmt_pct(e['change'])})"
            v = e.get("verdict")
            if v is not None:  # both releases measured in one interleaved session
                mark = VERDICT_MARKS[v.verdict]
                if v.verdict in ("slower", "faster"):
                    text = f"**{text} {mark} {v.lo:.2f}-{v.hi:.2f}x**"
                else:
                    text = f"{text} {mark}"
            elif e["flag"]:  # cross-run: past the threshold, but not a verdict
                mark = "△" if e["flag"] == "slower" else "▽"
                if e["confirmed"] is None:
                    mark += "?"
                text = f"**{text} {mark}**"
            cells.append(text)
        rows.append(cells)
    return headers, rows


# --------------------------------------------------------------------------
# Markdown, JSON, CSV
# --------------------------------------------------------------------------


def markdown(report, plot_links=()):
    h = report.header()
    out = [f"# MLX vs PyTorch: asv results on `{h['machine']}`", ""]
    out += [
        f"- **Machine**: `{h['machine']}`: CPU {h['cpu']} ({h['num_cpu']} cores, {h['arch']}), "
        f"RAM {h['ram']}; GPU: {h['gpu']}; OS {h['os']}",
        f"- **MLX** {h['mlx']} (ledger commit `{h['commit'][:8]}`, tag {h['release']}); "
        f"**torch** {h['torch'] or 'not recorded'}"
        + (f" (this machine also has results of torch {', '.join(h['torch_others'])}: `--torch VERSION`, "
           f"`--torch-versions all`)" if h.get("torch_others") else "") + f"; Python {h['python']}",
        f"- **asv environment**: {', '.join(f'`{e}`' for e in h['env_names']) or 'n/a'}",
        *(f"  - `{e}`: {settings_text(s)}" for e, s in h["env_settings"].items() if e),
        f"- **Releases with results**: {', '.join(report.res.releases())}; "
        f"in the release table: {', '.join(report.releases)}",
        "",
        "asv settings per benchmark (benchmarks.json) and the samples recorded for this release "
        "(`number x repeat`: calls per sample x samples; several where cases differ):",
        "",
        md_table(["Benchmark", "asv settings", "samples recorded"], h["settings"]),
        "",
    ]
    headers, rows = detailed_table(report)
    out += [f"## Detailed benchmark, MLX {report.release} (ms)", "", md_table(headers, rows), "",
            "`n/a`: skipped (backend not on this machine, or not run); `failed`: asv recorded a "
            "failure.", "", SPEEDUP_NOTE, ""]
    if any(h.endswith(" MDE") for h in headers):
        out += ["`MDE`: the case's minimum detectable effect on this machine, the smallest slowdown "
                "`tools/gate.py` calls slower with 80% power, as measured by `studies/calibrate.py` "
                "(median over its runs; `python studies/calibrate.py --summary`).", ""]
    headers, rows = average_table(report)
    out += [f"## Average benchmark, MLX {report.release} (ms, geometric mean per family)", "",
            md_table(headers, rows), "", AVERAGE_NOTE, ""]
    changes = report.changes()
    headers, rows = release_table(report, changes)
    thr = f"{report.threshold * 100:g}%"
    out += [f"## Across releases (ms, change from the previous release)", "", md_table(headers, rows), "",
            f"Each cell: time in ms and (in brackets) the change from the previous release shown "
            f"that has a result for that row.", "",
            "- **Verdicts** (same run): where both releases were measured in one interleaved session "
            "(the main job, `tools/gate.py`), the cell carries the verdict of mlx_asv/decide/verdicts.py "
            "(moderated t-test over the per-process times, 99.9% interval of the ratio): **▲ slower** / "
            "**▼ faster** with that interval, `=` same (any change under 10%), `~` undecided "
            "(measure more: `tools/gate.py`).",
            f"- **Cross-run changes** (`△` slower, `▽` faster): the two results come from different runs. "
            f"They are marked where the change is at least {thr} (asv.conf.json's "
            f"`regressions_thresholds`, `--threshold`) and asv's 99% intervals do not overlap (`?`: no "
            f"interval to check, e.g. one sample); on a shared machine runs hours apart drift by tens of "
            f"percent, so such a mark is never a confirmed change: the commands below measure it.", ""]
    cmds = report.gate_commands(changes)
    if cmds:
        out += ["To confirm the cross-run changes (one interleaved gate per release pair):", ""]
        out += [f"- {a} -> {b} ({n} rows): `{cmd}`" for a, b, n, cmd in cmds]
        out += [""]
    noise = report.noise(changes)
    if noise:
        rows = [[n["backend"] + (" (control)" if n["control"] else ""), n["results"],
                 fmt_pct(n["median_iqr"]).lstrip("+") if n["median_iqr"] is not None else "n/a",
                 n["changes"],
                 fmt_pct(n["median_change"]).lstrip("+") if n["median_change"] is not None else "n/a",
                 fmt_pct(n["p90_change"]).lstrip("+") if n["p90_change"] is not None else "n/a",
                 n["flagged"]] for n in noise]
        out += ["### Measured noise", "",
                md_table(["backend", "results", "median IQR/median", "changes",
                          "median abs change", "p90 abs change", f"flagged (>= {thr})"], rows), ""]
        out += [noise_verdict(noise, report.threshold), ""]
    if plot_links:
        out += ["## Plots (time vs MLX release, log scale; bars: the samples' interquartile range, "
                "else asv's 99% interval)", ""]
        out += [f"- [{fam}]({png}) ([SVG]({svg}))" for fam, png, svg in plot_links]
        out += [""]
    if report.skipped_benches:
        out += [f"Not in these tables (not timings): {', '.join(report.skipped_benches)}.", ""]
    return "\n".join(out)


def settings_text(settings):
    """An environment's settings for the header: flavour and TF32, or why there are none."""
    flavour, tf32 = settings.get("MLX_ASV_FLAVOR"), settings.get("MLX_ENABLE_TF32")
    if flavour is None and tf32 is None:
        return ("flavour and MLX_ENABLE_TF32 not recorded (measured before asv.conf.json's matrix "
                "had them: the flavour detected at install, TF32 as the caller's environment had it)")
    flavour = "not recorded" if flavour is None else (
        "auto (detected at install: cuda13 with an NVIDIA driver, cpu on Linux, metal on macOS)"
        if flavour == "auto" else flavour)
    tf32 = "not recorded" if tf32 is None else tf32 + {"0": " (TF32 off)", "1": " (MLX's default: TF32 on, CUDA only)"}.get(tf32, "")
    return f"flavour {flavour}; MLX_ENABLE_TF32 {tf32}"


def noise_verdict(noise, threshold):
    thr = f"{threshold * 100:g}%"
    lines = ["`IQR/median`: the spread of the samples inside one asv result (all results with more "
             "than one sample). `abs change`: the size of the release-to-release changes in the table above. torch is "
             "pinned (asv.conf.json), so a `torch_*` row does not depend on the MLX release: its "
             "changes are noise between runs, and its flags are false alarms (the control)."]
    control = [n for n in noise if n["control"] and n["changes"]]
    if control:
        total = sum(n["changes"] for n in control)
        flagged = sum(n["flagged"] for n in control)
        p90 = max(n["p90_change"] for n in control)
        if flagged / total > 0.1:
            lines.append(f"**Here the noise exceeds the threshold**: {flagged} of {total} control "
                         f"changes ({flagged / total:.0%}) are flagged at {thr}, and 90% of them are "
                         f"below {p90:.0%}. Flags on this machine are not evidence of a regression; "
                         f"re-run on a quiet machine, or raise `--threshold` to about {p90:.2f}.")
        else:
            lines.append(f"The control is quiet enough for the threshold: {flagged} of {total} control "
                         f"changes ({flagged / total:.0%}) are flagged at {thr} (p90 abs change {p90:.0%}).")
    return " ".join(lines)


def as_json(report, plot_links=()):
    _, detailed = report.detailed()
    _, average = report.average()
    changes = report.changes()
    for row in changes:
        for e in row["releases"]:
            if e.get("verdict") is not None:
                e["verdict"] = dataclasses.asdict(e["verdict"])
    header = report.header()
    header["settings"] = [dict(zip(("benchmark", "asv_settings", "samples_recorded"), s))
                          for s in header["settings"]]
    return json.dumps({
        "header": header, "threshold": report.threshold,
        "speedup_definition": SPEEDUP_NOTE, "average_definition": AVERAGE_NOTE,
        "detailed": detailed, "average": average, "releases": report.releases,
        "changes": changes, "noise": report.noise(changes),
        "plots": [{"family": f, "path": png, "svg": svg} for f, png, svg in plot_links],
    }, indent=1, default=str)


def as_csv(report, table="long"):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if table == "detailed":
        headers, raw = report.detailed()
        w.writerow(headers)
        for r in raw:
            w.writerow([r["operation"]] + [_num(v) for v in r["times_ms"].values()]
                       + [_num(v) for v in r["speedups"].values()])
    elif table == "average":
        headers, raw = report.average()
        w.writerow(headers[:2] + ["cases_in_family"] + headers[2:])
        for r in raw:
            w.writerow([r["family"], r["shared_cases"], r["cases"]]
                       + [_num(v) for v in r["geomean_ms"].values()]
                       + [_num(v) for v in r["speedups"].values()])
    else:  # long: one row per release x case x backend
        w.writerow(["release", "benchmark", "operation", "backend", "ms", "status",
                    "change_vs_previous", "flag", "ci_confirmed", "verdict", "ratio_low", "ratio_high"])
        for row in report.changes():
            for e in row["releases"]:
                if e["status"] == "missing":
                    continue
                w.writerow([e["release"], row["benchmark"], row["operation"], row["backend"],
                            _num(e["ms"]), e["status"], _num(e["change"]), e["flag"] or "",
                            "" if e["confirmed"] is None else str(e["confirmed"]).lower(),
                            e["verdict"].verdict if e.get("verdict") else ("cross-run" if e.get("cross_run") else ""),
                            _num(e["verdict"].lo) if e.get("verdict") else "",
                            _num(e["verdict"].hi) if e.get("verdict") else ""])
    return buf.getvalue()


def _num(v):
    return "" if v is None else f"{v:.6g}"
