"""The history in counts: an instruction-count run written as asv results,
its steps, and the regressions page's rule for count graphs."""

import json
import subprocess

import pytest

from benchmarks.lib import counting
from mlx_asv.report import count_history as ch
from mlx_asv.report import regressions

ARGMAX = "ops.Argmax.time_op('dim=64x1024x128 axis=0', 'mlx_cpu')"
RELU = "ops.ReLU.time_op('dim=64x128x1024', 'mlx_cpu')"
FN = "void mlx::core::arg_reduce<float>(...) [libmlx.so]"


def ledger_with(tmp_path, n):
    repo = tmp_path / "ledger"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commits = []
    for i in range(n):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                        "--allow-empty", "-m", f"v0.{i}"], check=True,
                       env={"GIT_COMMITTER_DATE": f"2026-01-0{i + 1}T00:00:00Z", "PATH": "/usr/bin:/bin"})
        commits.append(subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                      text=True, check=True).stdout.strip())
    return repo, commits


def run_dir(tmp_path, commits, argmax=(80_740_000, 114_950_000), relu=(23_100_000, 23_100_500)):
    names = [f"v0.{i}.0" for i in range(len(commits))]
    counts = {}
    for i, name in enumerate(names):
        counts[name] = {
            ARGMAX: {"counts": [argmax[i]], "functions": {FN: argmax[i] - 1000, "memcpy [libc.so.6]": 500}},
            RELU: {"counts": [relu[i]], "functions": {"relu [libmlx.so]": relu[i] - 100}},
        }
    counts[names[0]]["ops.Sort.time_op('dim=64x128x1024 axis=2', 'mlx_cpu')"] = {"skip": "not in this release"}
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "counts.json").write_text(json.dumps({
        "names": names, "commits": commits, "calls": 1, "processes": 1, "left_out": {},
        "identities": {n: {"python": "3.11.7", "cpu": "AuthenticAMD AMD EPYC"} for n in names},
        "counts": counts}))
    return folder


BENCHMARKS = {
    "work.Argmax.track_instructions": {
        "name": "work.Argmax.track_instructions", "version": "v1", "param_names": ["case", "backend"],
        "params": [["'dim=64x1024x128 axis=0'", "'dim=64x1024x128 axis=1'"], ["'mlx_cpu'"]]},
    "work.ReLU.track_instructions": {
        "name": "work.ReLU.track_instructions", "version": "v2", "param_names": ["case", "backend"],
        "params": [["'dim=64x128x1024'"], ["'mlx_cpu'"]]},
}


def test_counts_become_asv_results_of_their_own_machine(tmp_path):
    from asv.results import Results

    repo, commits = ledger_with(tmp_path, 2)
    out = tmp_path / "ref" / "valgrind-amd-epyc"
    written, found = ch.write(str(run_dir(tmp_path, commits)), "valgrind-amd-epyc", str(out),
                              benchmarks=BENCHMARKS, repo=str(repo))
    assert written == ["v0.0.0", "v0.1.0"]
    assert json.loads((out / "machine.json").read_text())["machine"] == "valgrind-amd-epyc"
    files = sorted(p.name for p in out.glob(f"{commits[1][:8]}-*.json"))
    res = Results.load(str(out / files[0]))
    assert res.commit_hash == commits[1]
    assert res.get_result_value("work.Argmax.track_instructions", BENCHMARKS[
        "work.Argmax.track_instructions"]["params"]) == [114_950_000, None]
    assert res.get_result_value("work.ReLU.track_instructions", [["'dim=64x128x1024'"], ["'mlx_cpu'"]]) \
        == [23_100_500]
    assert res.date == 1767312000000  # the ledger commit's date, as asv files a release
    # the step past the threshold, with the function whose own count moved most
    assert [(s["key"], s["verdict"], s["function"]) for s in found] == [(ARGMAX, "more", FN)]
    assert json.loads((out / ch.STEPS_FILE).read_text())["steps"][0]["cand_commit"] == commits[1]


def test_the_discovered_work_benchmarks_are_asvs():
    got = ch.work_benchmarks()
    assert "work.Argmax.track_instructions" in got
    assert all(name.startswith("work.") for name in got)
    assert got["work.Argmax.track_instructions"]["param_names"] == ["case", "backend"]


def test_a_missing_run_is_one_line(tmp_path, capsys):
    assert ch.main([str(tmp_path / "nothing"), "--machine", "m", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "count the releases first" in err and err.count("\n") == 1


def test_count_graph_steps_are_their_own_verdict(tmp_path):
    steps = {}
    ok, why = regressions.work_step("work.X.track_instructions('a', 'mlx_cpu')", "A", "B",
                                    [1, 2, 80_740_000, 114_950_000], steps)
    assert ok and "1.424x" in why
    ok, why = regressions.work_step("work.X.track_instructions('a', 'mlx_cpu')", "A", "B",
                                    [1, 2, 23_100_000, 23_200_000], steps)
    assert not ok and "within the work threshold (1%)" in why
    # below 1 M instructions the threshold is 5%
    assert not regressions.work_step("k", "A", "B", [1, 2, 100_000, 104_000], steps)[0]
    assert regressions.work_step("k", "A", "B", [1, 2, 100_000, 106_000], steps)[0]


def test_the_step_names_its_function_from_the_history(tmp_path):
    repo, commits = ledger_with(tmp_path, 2)
    results = tmp_path / "results"
    ch.write(str(run_dir(tmp_path, commits)), "valgrind-amd-epyc", str(results / "valgrind-amd-epyc"),
             benchmarks=BENCHMARKS, repo=str(repo))
    steps = ch.load_steps(str(results))
    key = counting.work_key(ARGMAX)
    assert set(steps) == {(key, commits[0], commits[1])}
    ok, why = regressions.work_step(key, commits[0], commits[1], [1, 2, 80_740_000, 114_950_000], steps)
    assert ok and FN in why and "v0.0.0 -> v0.1.0" in why


def test_a_corrupt_steps_file_loses_only_its_steps(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / ch.STEPS_FILE).write_text("{not json")
    assert ch.load_steps(str(tmp_path)) == {}
    assert "unreadable" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["ops.Argmax.time_op('a b', 'mlx_cpu')", "ops.Compile.time_compile('x', 'mlx_cpu')"])
def test_work_key_of_a_case(key):
    fam = key.split(".")[1]
    assert counting.work_key(key).startswith(f"work.{fam}.track_instructions(")


def test_the_regressions_page_keeps_a_count_step_past_the_threshold(tmp_path):
    from mlx_asv.report.sessions import Sessions

    repo, commits = ledger_with(tmp_path, 2)
    results = tmp_path / "results"
    ch.write(str(run_dir(tmp_path, commits)), "valgrind-amd-epyc", str(results / "valgrind-amd-epyc"),
             benchmarks=BENCHMARKS, repo=str(repo))
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.json").write_text(json.dumps({"revision_to_hash": {"1": commits[0], "2": commits[1]}}))
    argmax, relu = counting.work_key(ARGMAX), counting.work_key(RELU)
    entries = [[argmax, "graphs/a.json", {}, 0, 114_950_000, 80_740_000, [[1, 2, 80_740_000, 114_950_000]]],
               [relu, "graphs/r.json", {}, 0, 23_100_500, 23_100_000, [[1, 2, 23_100_000, 23_100_500]]]]
    (html / "regressions.json").write_text(json.dumps({"regressions": entries}))
    kept, dropped = regressions.filter_regressions(str(html), Sessions(root=str(tmp_path)), repo=str(repo),
                                                   results_dir=str(results))
    assert [e[0] for e in json.loads((html / "regressions.json").read_text())["regressions"]] == [argmax]
    assert FN in kept[0][3] and "1.424x" in kept[0][3]
    assert [d[0] for d in dropped] == [relu] and "within the work threshold" in dropped[0][3]


def test_two_runs_merge_into_one_release_file_each(tmp_path):
    from asv.results import Results

    repo, commits = ledger_with(tmp_path, 2)
    first = run_dir(tmp_path, commits)
    second = tmp_path / "softmax"
    second.mkdir()
    softmax = "ops.Softmax.time_op('dim=64x1000000 axis=-1', 'mlx_cpu')"
    (second / "counts.json").write_text(json.dumps({
        "names": ["v0.1.0"], "commits": [commits[1]], "calls": 1, "counts": {"v0.1.0": {softmax: {"counts": [5]}}}}))
    benchmarks = dict(BENCHMARKS, **{"work.Softmax.track_instructions": {
        "name": "work.Softmax.track_instructions", "version": "v3", "param_names": ["case", "backend"],
        "params": [["'dim=64x1000000 axis=-1'"], ["'mlx_cpu'"]]}})
    out = tmp_path / "ref" / "m"
    written, _ = ch.write([str(first), str(second)], "m", str(out), benchmarks=benchmarks, repo=str(repo))
    assert written == ["v0.0.0", "v0.1.0"]
    res = Results.load(str(next(out.glob(f"{commits[1][:8]}-*.json"))))
    assert res.get_result_value("work.Softmax.track_instructions", [["'dim=64x1000000 axis=-1'"], ["'mlx_cpu'"]]) == [5]
    assert res.get_result_value("work.ReLU.track_instructions", [["'dim=64x128x1024'"], ["'mlx_cpu'"]]) == [23_100_500]
