"""The report (reporting/): reading results, statistics, tables, flags, header,
CSV/JSON, plots, bad selections.

The results are synthetic, written in asv's results format (version 2) into a
temporary folder, with a small ledger of three releases built by tools/ledger.py
(or, for the small result sets of single tests, fixed commit -> tag maps).
Every test runs the project's code; the expected numbers are worked out by
hand from the inputs written here.
"""

import csv
import datetime as dt
import io
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from benchmarks import common
from mlx_asv.report import plots, render, report, results, stats
from mlx_asv.commands import report as report_command
from mlx_asv.envs import ledger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NaN = float("nan")
CASES = {
    "ops.Softmax.time_op": ["dim=64x1000000 axis=-1", "dim=8x16 axis=0"],
    "ops.SumAll.time_op": ["dim=1000000"],
}
BACKENDS = list(common.BACKENDS)
RELEASES = ["0.1.0", "0.2.0", "0.3.0"]

# (bench, case, backend) -> per release: ms, or (ms, ci half-width ms), None = failed,
# NaN = skipped, "quick" suffix via ("q", ms) = one sample, no confidence interval.
TIMES = {
    ("ops.Softmax.time_op", "dim=64x1000000 axis=-1", "mlx_cpu"): [10.0, 10.5, 20.0],    # +5%, then +90%
    ("ops.Softmax.time_op", "dim=64x1000000 axis=-1", "torch_cpu"): [40.0, 40.0, 40.0],
    ("ops.Softmax.time_op", "dim=64x1000000 axis=-1", "mlx_gpu"): [NaN, NaN, 5.0],
    ("ops.Softmax.time_op", "dim=8x16 axis=0", "mlx_cpu"): [1.0, (2.0, 1.5), 2.0],        # +100% inside the CIs
    ("ops.Softmax.time_op", "dim=8x16 axis=0", "torch_cpu"): [4.0, 4.0, ("q", 2.0)],     # -50%, no CI
    ("ops.Softmax.time_op", "dim=8x16 axis=0", "mlx_gpu"): [NaN, NaN, 0.5],
    ("ops.SumAll.time_op", "dim=1000000", "mlx_cpu"): [None, 3.0, 3.0],
    ("ops.SumAll.time_op", "dim=1000000", "torch_cpu"): [None, 1.0, 1.0],
}

MACHINE = {"arch": "x86_64", "cpu": "Test CPU 9000", "machine": "testbox", "num_cpu": "4",
           "os": "Linux 6.1-test", "ram": str(16 * 2 ** 30), "version": 1}
REQS = {"asv_runner": "0.3.2", "torch": "2.13.0", "numpy": "2.4.6", "transformers": "5.23.0"}
ENV = "virtualenv-py3.11-asv_runner0.3.2-numpy2.4.6-torch2.13.0-transformers5.23.0"
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
           "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]
T0 = 1700000000000  # ms since the epoch, as asv writes dates


def q(s):
    return repr(s)


def build_ledger(path):
    releases = [ledger.Release(v, dt.datetime(2024, 1, 1 + i, tzinfo=dt.timezone.utc))
                for i, v in enumerate(RELEASES)]
    return [commit for _, commit in ledger.build(releases, repo=str(path), log=lambda m: None)]


def result_row(bench, index, cases=CASES, times=TIMES, started_at=None):
    """asv's result row of one benchmark for release number ``index`` of ``times``."""
    params = [[q(c) for c in cases[bench]], [q(b) for b in BACKENDS]]
    cols = {k: [] for k in COLUMNS[5:11]}
    values = []
    started = T0 + index if started_at is None else started_at
    for case in cases[bench]:
        for backend in BACKENDS:
            v = times.get((bench, case, backend), [NaN] * (index + 1))[index]
            half, quick = 0.01, False
            if isinstance(v, tuple):
                if v[0] == "q":
                    quick, v = True, v[1]
                else:
                    v, half = v
            if v is None or (isinstance(v, float) and math.isnan(v)):
                values.append(v)
                for k in cols:
                    cols[k].append(None)
                continue
            s = v / 1e3
            values.append(s)
            h = half / 1e3
            cols["stats_ci_99_a"].append(-math.inf if quick else s - h)
            cols["stats_ci_99_b"].append(math.inf if quick else s + h)
            cols["stats_q_25"].append(s - h / 2)
            cols["stats_q_75"].append(s + h / 2)
            cols["stats_number"].append(1)
            cols["stats_repeat"].append(1 if quick else 10)
    if all(v is None for v in values):
        return [None, params, "v1", started, 1.0] + [None] * 8
    return [values, params, "v1", started, 1.0] + [cols[k] for k in COLUMNS[5:11]] + [None, None]


def benchmarks_json(cases=CASES):
    out = {}
    for bench, names in cases.items():
        out[bench] = {"name": bench, "type": "time", "unit": "seconds", "param_names": ["case", "backend"],
                      "params": [[q(c) for c in names], [q(b) for b in BACKENDS]],
                      "rounds": 1, "number": 0, "repeat": 0, "warmup_time": -1, "min_run_count": 2,
                      "timeout": 300, "version": "v1"}
    out["version"] = 2
    return out


def results_file(commit, rows, date, env=ENV, env_vars=None):
    return {"commit_hash": commit, "env_name": env, "date": date,
            "params": dict(MACHINE, python="3.11", **REQS), "python": "3.11",
            "requirements": REQS, "env_vars": env_vars or {}, "result_columns": COLUMNS,
            "results": rows, "durations": {}, "version": 2}


def write_results(folder, commits, machine=MACHINE, cases=CASES, times=TIMES):
    """asv's results/ for ``commits`` (release number i = commits[i]); test_site_browser uses it too."""
    mdir = folder / machine["machine"]
    mdir.mkdir(parents=True)
    (mdir / "machine.json").write_text(json.dumps(machine))
    (folder / "benchmarks.json").write_text(json.dumps(benchmarks_json(cases)))
    for index, commit in enumerate(commits):
        data = results_file(commit, {b: result_row(b, index, cases, times) for b in cases}, T0 + index)
        (mdir / f"{commit[:8]}-{ENV}.json").write_text(json.dumps(data))
    return mdir


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    commits = build_ledger(tmp / "ledger")
    write_results(tmp / "results", commits)
    return tmp


def run(project, *args, capsys):
    # --evidence: no sessions or calibration of this checkout's own .asv/ in the tables
    rc = report_command.main(["--results", str(project / "results"), "--ledger", str(project / "ledger"),
                      "--evidence", str(project), *args])
    out, err = capsys.readouterr()
    return rc, out, err


def load(project, **kw):
    res = results.Results(str(project / "results"), ledger_dir=str(project / "ledger"))
    return report.Report(res, **kw)


def small_report(tmp_path, cases, times, **kw):
    """A Report of one release (v1.0.0) of the given cases and times (no ledger)."""
    commit = "c" * 40
    write_results(tmp_path / "results", [commit], cases=cases, times=times)
    res = results.Results(str(tmp_path / "results"), tags={commit: "v1.0.0"})
    return report.Report(res, **kw)


def table_rows(markdown, title):
    """The rows (lists of cells) of the Markdown table under the heading containing ``title``."""
    lines = markdown.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("#") and title in l)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            if not line.startswith("|-"):
                rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows


def point(value_ms, ci=None, iqr=None, repeat=10, status="ok"):
    """A point as Results keeps it (seconds), for the stats tests."""
    s = lambda v: None if v is None else v / 1e3  # noqa: E731
    ci = ci or (None, None)
    iqr = iqr or (None, None)
    return {"status": status, "value": s(value_ms) if status == "ok" else None,
            "ci": (s(ci[0]), s(ci[1])), "q": (s(iqr[0]), s(iqr[1])), "number": 1, "repeat": repeat}


# --------------------------------------------------------------------------
# Reading results (mlx_asv/report/results.py)
# --------------------------------------------------------------------------


def test_results_reads_values_statuses_and_stats(project):
    res = results.Results(str(project / "results"), ledger_dir=str(project / "ledger"))
    assert res.machine == "testbox" and res.releases() == ["v0.1.0", "v0.2.0", "v0.3.0"]
    p = res.points[("v0.2.0", "ops.Softmax.time_op", "dim=8x16 axis=0", "mlx_cpu")]
    assert p["status"] == "ok" and p["value"] == pytest.approx(2.0e-3)
    assert p["ci"] == pytest.approx((0.5e-3, 3.5e-3)) and p["q"] == pytest.approx((1.25e-3, 2.75e-3))
    assert (p["number"], p["repeat"]) == (1, 10)
    assert res.points[("v0.1.0", "ops.Softmax.time_op", "dim=8x16 axis=0", "mlx_gpu")]["status"] == "skipped"
    failed = res.points[("v0.1.0", "ops.SumAll.time_op", "dim=1000000", "mlx_cpu")]
    assert failed["status"] == "failed" and failed["value"] is None
    assert res.bench_meta["ops.Softmax.time_op"]["cases"] == CASES["ops.Softmax.time_op"]
    assert res.bench_meta["ops.Softmax.time_op"]["backends"] == BACKENDS
    assert res.release_info["v0.3.0"]["requirements"]["torch"] == "2.13.0"


@pytest.mark.parametrize("newer_status", ["failed", "skipped"])
@pytest.mark.parametrize("newer_file_first", [True, False])
@pytest.mark.parametrize("clock", ["started_at", "date"])
def test_newest_result_wins_whatever_the_file_order(tmp_path, newer_status, newer_file_first, clock):
    """Finding 4: two results files for one release; the newer run's result (failed
    or skipped) is the one reported, whether its file is read first or last. The
    run's time is the benchmark's started_at, or the file's date without one."""
    bench, case = "ops.SumAll.time_op", "dim=1000000"
    cases = {bench: [case]}
    commit = "d" * 40
    newer_value = None if newer_status == "failed" else NaN
    older = {(bench, case, "mlx_cpu"): [3.0]}
    newer = {(bench, case, "mlx_cpu"): [newer_value]}
    mdir = write_results(tmp_path / "results", [], cases=cases)
    # Files are read in name order: 'a-...' first, then 'b-...'.
    names = ("a-new.json", "b-old.json") if newer_file_first else ("a-old.json", "b-new.json")
    for name, times, t in ((names[0], newer if newer_file_first else older, 2 if newer_file_first else 1),
                           (names[1], older if newer_file_first else newer, 1 if newer_file_first else 2)):
        row = result_row(bench, 0, cases, times, started_at=T0 + t * 1000)
        if clock == "date":
            row[COLUMNS.index("started_at")] = None
        date = T0 + t * 1000 if clock == "date" else T0
        (mdir / name).write_text(json.dumps(results_file(commit, {bench: row}, date, env=name)))
    res = results.Results(str(tmp_path / "results"), tags={commit: "v1.0.0"})
    p = res.points[("v1.0.0", bench, case, "mlx_cpu")]
    assert p["status"] == newer_status and p["value"] is None
    rep = report.Report(res, backends="mlx_cpu")
    assert rep.changes()[0]["releases"][0]["status"] == newer_status


def test_families_are_unique():
    """Finding 5: a class name in two modules gives two families."""
    benches = ["ops.LayerNorm.time_op", "metal_kernels.LayerNorm.time_fused", "ops.Softmax.time_op",
               "metal_kernels.QR.time_a", "metal_kernels.QR.time_b"]
    fam = results.families(benches)
    assert fam == {"ops.LayerNorm.time_op": "ops.LayerNorm",
                   "metal_kernels.LayerNorm.time_fused": "metal_kernels.LayerNorm",
                   "ops.Softmax.time_op": "Softmax",
                   "metal_kernels.QR.time_a": "QR.time_a", "metal_kernels.QR.time_b": "QR.time_b"}
    assert results.family_of("ops.LayerNorm.time_op", benches) == "ops.LayerNorm"


def test_same_class_in_two_modules_is_two_families_in_the_report(tmp_path):
    cases = {"ops.LayerNorm.time_op": ["n=4"], "metal_kernels.LayerNorm.time_op": ["n=4"]}
    times = {("ops.LayerNorm.time_op", "n=4", "mlx_cpu"): [1.0],
             ("metal_kernels.LayerNorm.time_op", "n=4", "mlx_cpu"): [9.0]}
    rep = small_report(tmp_path, cases, times)
    headers, rows = render.average_table(rep)
    assert rows == [["metal_kernels.LayerNorm", "1", "9.00"], ["ops.LayerNorm", "1", "1.00"]]
    assert [r[0] for r in render.detailed_table(rep)[1]] == ["metal_kernels.LayerNorm / n=4",
                                                              "ops.LayerNorm / n=4"]
    written = plots.plot_families(rep, str(tmp_path / "plots"))
    assert [f for f, _, _ in written] == ["metal_kernels.LayerNorm", "ops.LayerNorm"]
    assert len({png for _, png, _ in written}) == 2
    only = report.Report(rep.res, bench=r"^ops\.LayerNorm / ")
    assert [r["operation"] for r in only.detailed()[1]] == ["ops.LayerNorm / n=4"]


# --------------------------------------------------------------------------
# Statistics (mlx_asv/report/stats.py)
# --------------------------------------------------------------------------


def test_geomean_and_quantile():
    assert stats.geomean([1.0, 4.0, None, 0.0, -3.0]) == pytest.approx(2.0)  # only the positive values
    assert stats.geomean([2.0, 8.0, 4.0]) == pytest.approx(4.0)
    assert stats.geomean([None, 0]) is None
    assert stats.quantile([4.0, 1.0, 3.0, 2.0], 0.9) == pytest.approx(3.7)
    assert stats.quantile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert stats.quantile([5.0], 0.9) == 5.0 and stats.quantile([], 0.5) is None


def test_ci_overlap():
    assert stats.ci_overlap((1, 2), (2.5, 3)) is False
    assert stats.ci_overlap((2.5, 3), (1, 2)) is False
    assert stats.ci_overlap((1, 2), (1.5, 3)) is True
    assert stats.ci_overlap((1, 2), (2, 3)) is True          # touching intervals overlap
    assert stats.ci_overlap((-math.inf, math.inf), (1, 2)) is None
    assert stats.ci_overlap((None, 2), (1, 2)) is None


def test_change_entries_threshold_intervals_and_gaps():
    series = [("r1", point(8.0, ci=(7.9, 8.1))),
              ("r2", None),                                        # missing: compared across the gap
              ("r3", point(10.0, ci=(9.9, 10.1))),                 # +25% exactly: flagged at 25% (>=)
              ("r4", point(0, status="failed")),
              ("r5", point(5.0, ci=(4.9, 10.5))),                  # -50% but the intervals overlap
              ("r6", point(10.0, ci=(-math.inf, math.inf)))]       # +100%, no interval: flag unconfirmed
    e = stats.change_entries(series, threshold=0.25)
    assert [x["status"] for x in e] == ["ok", "missing", "ok", "failed", "ok", "ok"]
    assert [x["ms"] for x in e] == pytest.approx([8.0, None, 10.0, None, 5.0, 10.0])
    assert e[0]["change"] is None and e[2]["change"] == 0.25
    assert (e[2]["flag"], e[2]["confirmed"]) == ("slower", True)
    assert e[4]["change"] == pytest.approx(-0.5) and (e[4]["flag"], e[4]["confirmed"]) == (None, False)
    assert (e[5]["flag"], e[5]["confirmed"]) == ("slower", None)
    assert stats.change_entries(series, threshold=0.26)[2]["flag"] is None


def test_noise_spreads_changes_and_control():
    points = [("mlx_cpu", point(10.0, iqr=(9.0, 11.0))),            # spread 0.2
              ("mlx_cpu", point(10.0, iqr=(9.5, 10.5))),            # 0.1
              ("mlx_cpu", point(10.0, iqr=(9.0, 13.0))),            # 0.4
              ("mlx_cpu", point(10.0, iqr=(0.0, 20.0), repeat=1)),  # one sample: left out
              ("mlx_cpu", point(0, status="failed")),
              ("torch_cpu", point(4.0, iqr=(3.9, 4.1)))]
    change_rows = [{"backend": "torch_cpu", "releases": [
        {"change": None, "flag": None}, {"change": 0.5, "flag": "slower"},
        {"change": -0.1, "flag": None}, {"change": 0.2, "flag": "slower"}]}]
    out = {n["backend"]: n for n in stats.noise(points, change_rows, ["mlx_cpu", "torch_cpu", "mlx_gpu"])}
    assert set(out) == {"mlx_cpu", "torch_cpu"}
    assert out["mlx_cpu"]["results"] == 3 and out["mlx_cpu"]["median_iqr"] == pytest.approx(0.2)
    assert not out["mlx_cpu"]["control"] and out["mlx_cpu"]["changes"] == 0
    t = out["torch_cpu"]
    assert t["control"] and t["changes"] == 3 and t["flagged"] == 2
    assert t["median_change"] == pytest.approx(0.2) and t["p90_change"] == pytest.approx(0.44)
    assert t["median_iqr"] == pytest.approx(0.05)


def test_family_average_uses_only_the_shared_cases():
    times = {"a": {"mlx_cpu": 1.0, "torch_cpu": 2.0, "mlx_gpu": None},
             "b": {"mlx_cpu": 4.0, "torch_cpu": 8.0, "mlx_gpu": None},
             "c": {"mlx_cpu": 16.0, "torch_cpu": None, "mlx_gpu": None}}
    avg = stats.family_average(times, ["mlx_cpu", "torch_cpu", "mlx_gpu"],
                               [("mlx_cpu", "torch_cpu"), ("mlx_gpu", "mlx_cpu")])
    assert avg["backends"] == ["mlx_cpu", "torch_cpu"] and avg["shared"] == ["a", "b"]
    assert avg["geomean_ms"] == pytest.approx({"mlx_cpu": 2.0, "torch_cpu": 4.0, "mlx_gpu": None})
    assert avg["speedups"]["mlx_cpu vs torch_cpu"] == pytest.approx(2.0)
    assert avg["speedups"]["mlx_gpu vs mlx_cpu"] is None


# --------------------------------------------------------------------------
# The tables (reporting/report.py selects, mlx_asv/report/render.py renders)
# --------------------------------------------------------------------------


def test_detailed_table_has_the_seed_layout(project, capsys):
    rc, out, err = run(project, capsys=capsys)
    assert rc == 0, err
    rows = table_rows(out, "Detailed benchmark, MLX v0.3.0")
    assert rows[0] == ["Operation", "mlx_cpu", "mlx_gpu", "torch_cpu",
                       "mlx_cpu vs torch_cpu speedup", "mlx_gpu vs mlx_cpu speedup"]
    body = {r[0]: r[1:] for r in rows[1:]}
    assert list(body) == ["Softmax / dim=64x1000000 axis=-1", "Softmax / dim=8x16 axis=0",
                          "SumAll / dim=1000000"]
    # speedup of A over B = time_B / time_A
    assert body["Softmax / dim=64x1000000 axis=-1"] == ["20.00", "5.00", "40.00", "2.00x", "4.00x"]
    assert body["Softmax / dim=8x16 axis=0"] == ["2.00", "0.50", "2.00", "1.00x", "4.00x"]
    assert body["SumAll / dim=1000000"] == ["3.00", "n/a", "1.00", "0.33x", "n/a"]
    assert "time_B / time_A" in out and "(time_B - time_A) / time_B" in out


def test_detailed_cells_show_failed_and_skipped(project, capsys):
    rc, out, _ = run(project, "--release", "v0.1.0", capsys=capsys)
    body = {r[0]: r[1:] for r in table_rows(out, "Detailed benchmark, MLX v0.1.0")[1:]}
    assert body["SumAll / dim=1000000"][:2] == ["failed", "failed"]
    assert table_rows(out, "Detailed benchmark, MLX v0.1.0")[0][1:3] == ["mlx_cpu", "torch_cpu"]


def test_speedup_is_time_b_over_time_a_not_the_seed_002_formula(tmp_path):
    """Seed 002 printed 0.55 for mlx_gpu 1.44 ms vs torch_mps 3.17 ms (1 - time_A / time_B);
    the report must print the speedup, 3.17 / 1.44 = 2.20x."""
    cases = {"ops.Gelu.time_op": ["n=1"]}
    times = {("ops.Gelu.time_op", "n=1", "mlx_gpu"): [1.44], ("ops.Gelu.time_op", "n=1", "torch_mps"): [3.17]}
    rep = small_report(tmp_path, cases, times)
    headers, rows = render.detailed_table(rep)
    assert headers == ["Operation", "mlx_gpu", "torch_mps", "mlx_gpu vs torch_mps speedup"]
    assert rows == [["Gelu / n=1", "1.44", "3.17", "2.20x"]]


def test_number_formats():
    assert [render.fmt_ms(v) for v in (None, 1234.56, 100.0, 99.994, 0.1, 0.0123456)] == \
        ["n/a", "1234.6", "100.0", "99.99", "0.10", "0.0123"]
    assert [render.fmt_x(v) for v in (None, 2.0, 1 / 3)] == ["n/a", "2.00x", "0.33x"]
    assert [render.fmt_pct(v) for v in (None, 0.9, -0.5, 0.0)] == ["", "+90%", "-50%", "+0%"]


def test_average_table_is_the_geometric_mean_per_family(project):
    headers, rows = render.average_table(load(project))
    assert headers == ["Operation", "cases", "mlx_cpu", "mlx_gpu", "torch_cpu",
                       "mlx_cpu vs torch_cpu speedup", "mlx_gpu vs mlx_cpu speedup"]
    # Softmax at v0.3.0: mlx_cpu 20 and 2, mlx_gpu 5 and 0.5, torch_cpu 40 and 2
    assert rows[0] == ["Softmax", "2", f"{math.sqrt(40):.2f}", f"{math.sqrt(2.5):.2f}", f"{math.sqrt(80):.2f}",
                       f"{math.sqrt(2):.2f}x", "4.00x"]
    assert rows[1] == ["SumAll", "1", "3.00", "n/a", "1.00", "0.33x", "n/a"]


def test_average_table_compares_like_with_like(tmp_path, capsys):
    """Finding 6: a case that failed on torch_cpu is left out of mlx_cpu's mean too."""
    cases = {"ops.Exp.time_op": ["n=1", "n=2", "n=3"]}
    times = {("ops.Exp.time_op", "n=1", "mlx_cpu"): [1.0], ("ops.Exp.time_op", "n=1", "torch_cpu"): [2.0],
             ("ops.Exp.time_op", "n=2", "mlx_cpu"): [4.0], ("ops.Exp.time_op", "n=2", "torch_cpu"): [8.0],
             ("ops.Exp.time_op", "n=3", "mlx_cpu"): [64.0], ("ops.Exp.time_op", "n=3", "torch_cpu"): [None]}
    rep = small_report(tmp_path, cases, times)
    headers, rows = render.average_table(rep)
    assert headers == ["Operation", "cases", "mlx_cpu", "torch_cpu", "mlx_cpu vs torch_cpu speedup"]
    # over n=1 and n=2 only: mlx_cpu sqrt(1 * 4) = 2, torch_cpu sqrt(2 * 8) = 4; 2 of the 3 cases
    assert rows == [["Exp", "2 of 3", "2.00", "4.00", "2.00x"]]
    text = render.markdown(rep)
    assert "every backend that has results in that row" in text
    out = render.as_csv(rep, "average").splitlines()
    assert out[0].split(",")[:3] == ["Operation", "cases", "cases_in_family"]
    assert out[1] == "Exp,2,3,2,4,2"


def test_release_table_changes_and_flags(project, capsys):
    rc, out, _ = run(project, capsys=capsys)
    rows = table_rows(out, "Across releases")
    assert rows[0] == ["Operation", "backend", "v0.1.0", "v0.2.0", "v0.3.0"]
    body = {(r[0], r[1]): r[2:] for r in rows[1:]}
    big = body[("Softmax / dim=64x1000000 axis=-1", "mlx_cpu")]
    # a cross-run change (no session measured both releases): marked, never a verdict
    assert big == ["10.00", "10.50 (+5%)", "**20.00 (+90%) △**"]        # +5% < 10%: not marked
    assert body[("Softmax / dim=64x1000000 axis=-1", "mlx_gpu")] == ["n/a", "n/a", "5.00"]
    # +100% but the two 99% confidence intervals overlap: not flagged
    assert body[("Softmax / dim=8x16 axis=0", "mlx_cpu")][1] == "2.00 (+100%)"
    # a one-sample result (no interval): flagged on the threshold alone, marked '?'
    assert body[("Softmax / dim=8x16 axis=0", "torch_cpu")][2] == "**2.00 (-50%) ▽?**"
    # and the command that would confirm them
    assert "python tools/gate.py v0.2.0 v0.3.0 -b" in out
    assert body[("SumAll / dim=1000000", "mlx_cpu")] == ["failed", "3.00", "3.00 (+0%)"]
    # a higher threshold drops the flag
    rc, out, _ = run(project, "--threshold", "1.0", capsys=capsys)
    body = {(r[0], r[1]): r[2:] for r in table_rows(out, "Across releases")[1:]}
    assert body[("Softmax / dim=64x1000000 axis=-1", "mlx_cpu")][2] == "20.00 (+90%)"


def test_noise_uses_torch_as_the_control(project, capsys):
    rep = load(project)
    noise = {n["backend"]: n for n in rep.noise()}
    assert noise["torch_cpu"]["control"] and not noise["mlx_cpu"]["control"]
    assert noise["torch_cpu"]["flagged"] == 1  # the -50% quick result
    # torch_cpu changes: 0, 0 (big case); 0, -50% (small case); 0 (SumAll) -> 1 of 5 flagged = 20%
    assert noise["torch_cpu"]["changes"] == 5
    verdict = render.noise_verdict(rep.noise(), rep.threshold)
    assert "**Here the noise exceeds the threshold**: 1 of 5 control changes (20%)" in verdict
    rc, out, _ = run(project, capsys=capsys)
    rows = {r[0]: r for r in table_rows(out, "Measured noise")[1:]}
    assert rows["torch_cpu (control)"][3:] == ["5", "0%", "30%", "1"]


def test_header_names_machine_versions_and_settings(project, capsys):
    rc, out, _ = run(project, "--release", "v0.2.0", capsys=capsys)
    head = out.split("## Detailed")[0]
    for text in ("Test CPU 9000", "4 cores", "Linux 6.1-test", "16 GiB", "MLX** 0.2.0", "torch** 2.13.0",
                 "GPU: not recorded in machine.json; results on mlx_gpu", "rounds=1", "1x10", ENV):
        assert text in head, text
    assert "## Detailed benchmark, MLX v0.2.0" in out


# Finding 3: the settings that change the numbers, recorded by asv.conf.json's matrix
SETTINGS_ON = {"MLX_ASV_FLAVOR": "auto", "MLX_ENABLE_TF32": "1"}
SETTINGS_OFF = {"MLX_ASV_FLAVOR": "auto", "MLX_ENABLE_TF32": "0"}


def env_name(env_vars):
    return ENV + "".join(f"-{k}{v}" for k, v in sorted(env_vars.items()))


def settings_results(tmp_path, variants):
    """One release (v1.0.0), one results file per (env_vars, ms of SumAll on mlx_cpu)."""
    bench, case = "ops.SumAll.time_op", "dim=1000000"
    cases, commit = {bench: [case]}, "e" * 40
    mdir = write_results(tmp_path / "results", [], cases=cases)
    for i, (env_vars, ms) in enumerate(variants):
        row = result_row(bench, 0, cases, {(bench, case, "mlx_cpu"): [ms]}, started_at=T0 + i)
        env = env_name(env_vars) if env_vars else ENV
        (mdir / f"{commit[:8]}-{env}.json").write_text(
            json.dumps(results_file(commit, {bench: row}, T0 + i, env=env, env_vars=env_vars)))
    return ["--results", str(tmp_path / "results")], {commit: "v1.0.0"}


def run_tags(args, tags, capsys, monkeypatch):
    monkeypatch.setattr(results, "ledger_tags", lambda ledger_dir=None: tags)
    rc = report_command.main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_header_shows_flavour_and_tf32_per_environment(tmp_path, capsys, monkeypatch):
    args, tags = settings_results(tmp_path, [(SETTINGS_ON, 3.0)])
    rc, out, _ = run_tags(args, tags, capsys, monkeypatch)
    assert rc == 0
    head = out.split("## Detailed")[0]
    assert f"`{env_name(SETTINGS_ON)}`: flavour auto (detected at install" in head
    assert "MLX_ENABLE_TF32 1 (MLX's default: TF32 on, CUDA only)" in head
    rc, out, _ = run_tags(args + ["--format", "json"], tags, capsys, monkeypatch)
    assert json.loads(out)["header"]["env_settings"] == {env_name(SETTINGS_ON): SETTINGS_ON}


def test_header_of_results_from_before_the_matrix_says_not_recorded(project, capsys):
    rc, out, _ = run(project, capsys=capsys)
    head = out.split("## Detailed")[0]
    assert f"`{ENV}`: flavour and MLX_ENABLE_TF32 not recorded" in head


def test_results_under_two_tf32_settings_are_not_mixed(tmp_path, capsys, monkeypatch):
    """TF32 on and off for one release: the newest-wins rule would mix them in the
    tables; the report refuses in one line and --settings picks one."""
    args, tags = settings_results(tmp_path, [(SETTINGS_ON, 3.0), (SETTINGS_OFF, 9.0), ({}, 5.0)])
    rc, out, err = run_tags(args, tags, capsys, monkeypatch)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "results under different settings" in err and "--settings MLX_ENABLE_TF32=" in err
    for setting, ms in (("MLX_ENABLE_TF32=0", "9.00"), ("MLX_ENABLE_TF32=1", "3.00")):
        rc, out, _ = run_tags(args + ["--settings", setting], tags, capsys, monkeypatch)
        assert rc == 0
        assert table_rows(out, "Detailed")[1][:2] == ["SumAll / dim=1000000", ms]
        assert f"MLX_ENABLE_TF32 {setting[-1]}" in out.split("## Detailed")[0]
    rc, _, err = run_tags(args + ["--settings", "MLX_ENABLE_TF32=7"], tags, capsys, monkeypatch)
    assert rc == 2 and "no results recorded with MLX_ENABLE_TF32=7" in err
    rc, _, err = run_tags(args + ["--settings", "TF32=0"], tags, capsys, monkeypatch)
    assert rc == 2 and "bad --settings 'TF32=0'" in err


def test_selection_options(project, capsys):
    rc, out, _ = run(project, "-b", "SumAll", "--backends", "mlx_cpu,torch_cpu",
                     "--releases", "v0.2.0..v0.3.0", capsys=capsys)
    assert rc == 0
    rows = table_rows(out, "Detailed")
    assert rows[0] == ["Operation", "mlx_cpu", "torch_cpu", "mlx_cpu vs torch_cpu speedup"]
    assert [r[0] for r in rows[1:]] == ["SumAll / dim=1000000"]
    assert table_rows(out, "Across releases")[0][2:] == ["v0.2.0", "v0.3.0"]
    rc, out, _ = run(project, "-b", "Softmax / dim=8x16", "--releases", "v0.1.0,0.3.0", capsys=capsys)
    assert [r[0] for r in table_rows(out, "Detailed")[1:]] == ["Softmax / dim=8x16 axis=0"]
    assert table_rows(out, "Across releases")[0][2:] == ["v0.1.0", "v0.3.0"]


@pytest.mark.parametrize("args, message", [
    (["--machine", "nope"], "unknown machine 'nope'; results have: testbox"),
    (["--release", "v9.9.9"], "release v9.9.9 has no results on machine 'testbox'"),
    (["--releases", "v0.1.0,v0.5.0"], "release v0.5.0 has no results on this machine"),
    (["--releases", "v1.0.0..v2.0.0"], "no release with results in v1.0.0..v2.0.0"),
    (["-b", "Nothing"], "--bench 'Nothing' matches no timed benchmark"),
    (["-b", "("], "bad --bench regex"),
    (["--backends", "mlx_tpu"], "unknown backend 'mlx_tpu'"),
    (["--threshold", "0"], "--threshold must be a positive fraction"),
])
def test_bad_selections_give_one_line_and_exit_2(project, capsys, args, message):
    rc, out, err = run(project, *args, capsys=capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err


def test_missing_results_folder(tmp_path, capsys):
    rc = report_command.main(["--results", str(tmp_path / "none")])
    assert rc == 2 and "no results folder" in capsys.readouterr().err


def test_csv_output(project, capsys):
    rc, out, _ = run(project, "--format", "csv", capsys=capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["release", "benchmark", "operation", "backend", "ms", "status",
                             "change_vs_previous", "flag", "ci_confirmed", "verdict", "ratio_low", "ratio_high"]
    row = next(r for r in rows if r["release"] == "v0.3.0" and r["backend"] == "mlx_cpu"
               and r["operation"] == "Softmax / dim=64x1000000 axis=-1")
    assert float(row["ms"]) == pytest.approx(20.0) and float(row["change_vs_previous"]) == pytest.approx(20 / 10.5 - 1, rel=1e-4)
    assert row["flag"] == "slower" and row["ci_confirmed"] == "true"
    assert any(r["status"] == "failed" for r in rows)
    rc, out, _ = run(project, "--format", "csv", "--table", "detailed", capsys=capsys)
    det = list(csv.reader(io.StringIO(out)))
    assert det[0][:2] == ["Operation", "mlx_cpu"] and det[1][0] == "Softmax / dim=64x1000000 axis=-1"
    assert float(det[1][det[0].index("mlx_cpu vs torch_cpu speedup")]) == pytest.approx(2.0)


def test_json_output(project, capsys):
    rc, out, _ = run(project, "--format", "json", capsys=capsys)
    data = json.loads(out)
    assert data["header"]["torch"] == "2.13.0" and data["header"]["mlx"] == "0.3.0"
    assert data["releases"] == ["v0.1.0", "v0.2.0", "v0.3.0"] and data["threshold"] == 0.1
    first = data["detailed"][0]
    assert first["operation"] == "Softmax / dim=64x1000000 axis=-1"
    assert first["speedups"]["mlx_cpu vs torch_cpu"] == pytest.approx(2.0)
    assert "time_B / time_A" in data["speedup_definition"]
    soft = next(a for a in data["average"] if a["family"] == "Softmax")
    assert (soft["cases"], soft["shared_cases"]) == (2, 2)


# --------------------------------------------------------------------------
# Plots (mlx_asv/report/plots.py)
# --------------------------------------------------------------------------


def test_plots_are_png_and_svg_linked_from_the_report(project, tmp_path, capsys):
    import matplotlib.image

    folder = tmp_path / "plots"
    rc, out, _ = run(project, "--plots", str(folder), capsys=capsys)
    assert rc == 0
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["plot_Softmax.png", "plot_Softmax.svg", "plot_SumAll.png", "plot_SumAll.svg"]
    for fam in ("Softmax", "SumAll"):
        png, svg = folder / f"plot_{fam}.png", folder / f"plot_{fam}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = matplotlib.image.imread(str(png)).shape[:2]
        assert width == 1000 and 480 <= height < 800
        root = ET.parse(svg).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert f"- [{fam}]({png}) ([SVG]({svg}))" in out
    # labels as they are (no upper-casing): the title and a case in the legend
    svg_text = (folder / "plot_Softmax.svg").read_text()
    assert "Softmax: time vs MLX release" in svg_text and "mlx_cpu: dim=8x16 axis=0" in svg_text


def test_plot_error_bars_are_the_recorded_spread(project):
    rep = load(project)
    series = {(s["backend"], s["case"]): s for s in plots.family_series(rep)["Softmax"]}
    small = series[("mlx_cpu", "dim=8x16 axis=0")]
    assert small["releases"] == ["v0.1.0", "v0.2.0", "v0.3.0"] and small["x"] == [0, 1, 2]
    # v0.2.0: 2.0 ms, recorded stats_q_25 = 1.25 ms and stats_q_75 = 2.75 ms
    assert small["y"][1] == pytest.approx(2.0)
    assert (small["low"][1], small["high"][1]) == pytest.approx((1.25, 2.75))
    assert small["spread"] == ["iqr"] * 3
    gpu = series[("mlx_gpu", "dim=64x1000000 axis=-1")]  # skipped twice: one point, at v0.3.0
    assert gpu["x"] == [2] and (gpu["low"][0], gpu["high"][0]) == pytest.approx((4.995, 5.005))
    # and that is what the figure draws: the error bar segments of that line
    fig = plots.figure("Softmax", rep.releases, list(series.values()))
    ax = fig.axes[0]
    drawn = {}
    for container in ax.containers:
        line, _, (bars,) = container.lines
        drawn[container.get_label()] = (list(line.get_xdata()), bars.get_segments())
    xs, segments = drawn["mlx_cpu: dim=8x16 axis=0"]
    assert xs == [0, 1, 2]
    assert [tuple(s[:, 1]) for s in segments][1] == pytest.approx((1.25, 2.75))
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["v0.1.0", "v0.2.0", "v0.3.0"]


def test_plot_spread_falls_back_to_the_99_percent_interval():
    low, high, source = plots.spread_ms(point(2.0, ci=(1.0, 3.0), iqr=(1.5, 2.5)))
    assert (low, high, source) == (pytest.approx(1.5), pytest.approx(2.5), "iqr")
    low, high, source = plots.spread_ms(point(2.0, ci=(1.0, 3.0)))
    assert (low, high, source) == (pytest.approx(1.0), pytest.approx(3.0), "ci99")
    assert plots.spread_ms(point(2.0, ci=(-math.inf, math.inf))) is None


# --------------------------------------------------------------------------
# The backend list
# --------------------------------------------------------------------------


def test_report_uses_the_benchmarks_backend_list_and_imports_no_framework():
    assert report.BACKENDS is common.BACKENDS
    code = ("import sys; import mlx_asv.report.report; "
            "print(sorted(m for m in ('mlx', 'torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_release_table_shows_same_run_verdicts(project, tmp_path):
    """Where a session (main job, gate) measured both releases, the cell is a verdict."""
    import json as _json
    import random as _random

    from mlx_asv.report.sessions import Sessions

    res = results.Results(str(project / "results"), ledger_dir=str(project / "ledger"))
    a, b = res.release_info["v0.2.0"]["commit"], res.release_info["v0.3.0"]["commit"]
    keys = {p["asv_key"] for (r, bench, c, bk), p in res.points.items() if r == "v0.3.0" and p["status"] == "ok"}
    slow = next(k for k in sorted(keys) if "64x1000000" in k and "'mlx_cpu'" in k)
    rng = _random.Random(3)
    # four processes a side: two rounds, then two fresh ones that confirm (the gate's rule)
    # sorted: the draws go to the same cases whatever the hash seed (a set's order is not)
    data = {k: {commit: [[0.01 * f * (1 + abs(rng.gauss(0, 0.003)))] * 3 for _ in range(4)]
                for commit, f in ((a, 1.0), (b, 1.9 if k == slow else 1.0))} for k in sorted(keys)}
    for i in range(30):  # more cases of the same noise, as a real session has
        data[f"x.F.time_op('c{i}', 'mlx_cpu')"] = {c: [[0.01 * (1 + abs(rng.gauss(0, 0.003)))] for _ in range(4)]
                                                   for c in (a, b)}
    folder = tmp_path / ".asv" / "gate" / "run"
    folder.mkdir(parents=True)
    (folder / "rounds.json").write_text(_json.dumps({"commits": [a, b], "rounds": 4, "data": data}))
    rep = report.Report(res, sessions=Sessions(root=str(tmp_path)))
    headers, rows = render.release_table(rep)
    body = {(r[0], r[1]): r[2:] for r in rows}
    cell = body[("Softmax / dim=64x1000000 axis=-1", "mlx_cpu")][2]
    assert cell.startswith("**20.00 (+90%) ▲ ") and cell.endswith("x**")  # a verdict, with its interval
    lo, hi = map(float, cell.split("▲ ")[1].rstrip("x*").split("-"))
    assert lo < 1.9 < hi
    # a pinned torch row measured in the same session: a verdict too, and not slower
    torch_cells = [v[2] for (op, bk), v in body.items() if bk == "torch_cpu" and v[2] not in ("n/a", "")]
    assert torch_cells and not any("▲" in c or "△" in c for c in torch_cells)


def test_detailed_table_shows_the_calibrated_minimum_detectable_effect(project):
    res = results.Results(str(project / "results"), ledger_dir=str(project / "ledger"))
    key = next(p["asv_key"] for (r, b, c, bk), p in res.points.items()
               if r == "v0.3.0" and bk == "mlx_cpu" and "64x1000000" in c)
    rep = report.Report(res, mde={key: 0.064})
    headers, rows = render.detailed_table(rep)
    assert headers[-1] == "mlx_cpu MDE"
    row = next(r for r in rows if r[0] == "Softmax / dim=64x1000000 axis=-1")
    assert row[-1] == "6%"
    # without a calibration there is no such column
    headers, _ = render.detailed_table(report.Report(res))
    assert not any(h.endswith("MDE") for h in headers)
