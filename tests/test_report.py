"""reporting/report.py: tables, release changes and flags, header, CSV/JSON, plots, bad selections.

The results are synthetic, written in asv's results format (version 2) into a
temporary folder, with a small ledger of three releases built by tools/ledger.py.
"""

import csv
import datetime as dt
import io
import json
import math
import os

import pytest

from reporting import plots, report
from tools import ledger

NaN = float("nan")
CASES = {
    "ops.Softmax.time_op": ["dim=64x1000000 axis=-1", "dim=8x16 axis=0"],
    "ops.SumAll.time_op": ["dim=1000000"],
}
BACKENDS = list(report.BACKENDS)
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


def q(s):
    return repr(s)


def build_ledger(path):
    releases = [ledger.Release(v, dt.datetime(2024, 1, 1 + i, tzinfo=dt.timezone.utc))
                for i, v in enumerate(RELEASES)]
    return [commit for _, commit in ledger.build(releases, repo=str(path), log=lambda m: None)]


def result_row(bench, index):
    params = [[q(c) for c in CASES[bench]], [q(b) for b in BACKENDS]]
    cols = {k: [] for k in COLUMNS[5:11]}
    values = []
    for case in CASES[bench]:
        for backend in BACKENDS:
            v = TIMES.get((bench, case, backend), [NaN] * 3)[index]
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
        return [None, params, "v1", 1700000000000 + index, 1.0] + [None] * 8
    return [values, params, "v1", 1700000000000 + index, 1.0] + [cols[k] for k in COLUMNS[5:11]] + [None, None]


def benchmarks_json():
    out = {}
    for bench, cases in CASES.items():
        out[bench] = {"name": bench, "type": "time", "unit": "seconds", "param_names": ["case", "backend"],
                      "params": [[q(c) for c in cases], [q(b) for b in BACKENDS]],
                      "rounds": 1, "number": 0, "repeat": 0, "warmup_time": -1, "min_run_count": 2,
                      "timeout": 300, "version": "v1"}
    out["version"] = 2
    return out


def write_results(folder, commits, machine=MACHINE):
    mdir = folder / machine["machine"]
    mdir.mkdir(parents=True)
    (mdir / "machine.json").write_text(json.dumps(machine))
    (folder / "benchmarks.json").write_text(json.dumps(benchmarks_json()))
    for index, commit in enumerate(commits):
        data = {"commit_hash": commit, "env_name": ENV, "date": 1700000000000 + index,
                "params": dict(machine, python="3.11", **REQS), "python": "3.11",
                "requirements": REQS, "env_vars": {}, "result_columns": COLUMNS,
                "results": {b: result_row(b, index) for b in CASES}, "durations": {}, "version": 2}
        (mdir / f"{commit[:8]}-{ENV}.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    commits = build_ledger(tmp / "ledger")
    write_results(tmp / "results", commits)
    return tmp


def run(project, *args, capsys):
    rc = report.main(["--results", str(project / "results"), "--ledger", str(project / "ledger"), *args])
    out, err = capsys.readouterr()
    return rc, out, err


def load(project, **kw):
    res = report.Results(str(project / "results"), ledger_dir=str(project / "ledger"))
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


def test_speedup_matches_the_correct_seed_formula():
    # seed 000 (M1): mlx_gpu 2.72 ms, mps 3.93 ms, printed "+44%" = time_B / time_A - 1
    assert round((3.93 / 2.72 - 1) * 100) == 44
    # seed 002 prints 0.55 for mlx_gpu 1.44 ms vs mps 3.17 ms: 1 - time_A / time_B, not a speedup
    assert round(1 - 1.44 / 3.17, 2) == 0.55 and 3.17 / 1.44 > 2
    assert report.fmt_x(3.17 / 1.44) == "2.20x"


def test_average_table_is_the_geometric_mean_per_family(project):
    headers, rows, raw = load(project).average()
    assert headers[0] == "Operation" and headers[-1] == "mlx_gpu vs mlx_cpu speedup"
    soft = next(r for r in raw if r["family"] == "Softmax")
    assert soft["geomean_ms"]["mlx_cpu"] == pytest.approx(math.sqrt(20.0 * 2.0))
    assert soft["speedups"]["mlx_cpu vs torch_cpu"] == pytest.approx(math.sqrt(2.0 * 1.0))
    assert [r[0] for r in rows] == ["Softmax", "SumAll"]


def test_release_table_changes_and_flags(project, capsys):
    rc, out, _ = run(project, capsys=capsys)
    rows = table_rows(out, "Across releases")
    assert rows[0] == ["Operation", "backend", "v0.1.0", "v0.2.0", "v0.3.0"]
    body = {(r[0], r[1]): r[2:] for r in rows[1:]}
    big = body[("Softmax / dim=64x1000000 axis=-1", "mlx_cpu")]
    assert big == ["10.00", "10.50 (+5%)", "**20.00 (+90%) ▲**"]        # +5% < 10%: not flagged
    assert body[("Softmax / dim=64x1000000 axis=-1", "mlx_gpu")] == ["n/a", "n/a", "5.00"]
    # +100% but the two 99% confidence intervals overlap: not flagged
    assert body[("Softmax / dim=8x16 axis=0", "mlx_cpu")][1] == "2.00 (+100%)"
    # a one-sample result (no interval): flagged on the threshold alone, marked '?'
    assert body[("Softmax / dim=8x16 axis=0", "torch_cpu")][2] == "**2.00 (-50%) ▼?**"
    assert body[("SumAll / dim=1000000", "mlx_cpu")] == ["failed", "3.00", "3.00 (+0%)"]
    # a higher threshold drops the flag
    rc, out, _ = run(project, "--threshold", "1.0", capsys=capsys)
    body = {(r[0], r[1]): r[2:] for r in table_rows(out, "Across releases")[1:]}
    assert body[("Softmax / dim=64x1000000 axis=-1", "mlx_cpu")][2] == "20.00 (+90%)"


def test_noise_uses_torch_as_the_control(project):
    rep = load(project)
    noise = {n["backend"]: n for n in rep.noise()}
    assert noise["torch_cpu"]["control"] and not noise["mlx_cpu"]["control"]
    assert noise["torch_cpu"]["flagged"] == 1  # the -50% quick result
    assert "control" in report.noise_verdict(rep.noise(), rep.threshold)


def test_header_names_machine_versions_and_settings(project, capsys):
    rc, out, _ = run(project, "--release", "v0.2.0", capsys=capsys)
    head = out.split("## Detailed")[0]
    for text in ("Test CPU 9000", "4 cores", "Linux 6.1-test", "16 GiB", "MLX** 0.2.0", "torch** 2.13.0",
                 "GPU: not recorded in machine.json; results on mlx_gpu", "rounds=1", "1x10", ENV):
        assert text in head, text
    assert "## Detailed benchmark, MLX v0.2.0" in out


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
    rc = report.main(["--results", str(tmp_path / "none")])
    assert rc == 2 and "no results folder" in capsys.readouterr().err


def test_csv_output(project, capsys):
    rc, out, _ = run(project, "--format", "csv", capsys=capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["release", "benchmark", "operation", "backend", "ms", "status",
                             "change_vs_previous", "flag", "ci_confirmed"]
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


def test_plots_are_pngs_linked_from_the_report(project, tmp_path, capsys):
    folder = tmp_path / "plots"
    rc, out, _ = run(project, "--plots", str(folder), capsys=capsys)
    assert rc == 0
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["plot_Softmax.png", "plot_SumAll.png"]
    for name in files:
        data = (folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = plots.png_size(data)
        assert width == 1000 and 560 < height < 800
        assert f"]({folder / name})" in out


def test_png_encoder_round_trip():
    import zlib

    import numpy as np

    img = np.zeros((3, 2, 3), dtype=np.uint8)
    img[1, 1] = (255, 0, 7)
    data = plots.encode_png(img)
    assert plots.png_size(data) == (2, 3)
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(3, 7)
    assert (raw[:, 0] == 0).all() and raw[1, 4:7].tolist() == [255, 0, 7]
