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
                        "--allow-empty", "-m", f"MLX v0.{i}.0"], check=True,
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


def test_a_run_onto_a_set_keeps_it_and_finds_the_steps_between_neighbours_again(tmp_path):
    """--onto: releases counted later (a source build between two releases
    of the set) join the set, and a step of the set splits where the new
    release lies, with its function from the new run; steps that stay
    between neighbours keep the function the set's steps file named."""
    repo, commits = ledger_with(tmp_path, 3)
    out = tmp_path / "ref" / "m"
    first = tmp_path / "first"
    first.mkdir()
    names = ["v0.0.0", "v0.2.0"]
    (first / "counts.json").write_text(json.dumps({
        "names": names, "commits": [commits[0], commits[2]], "calls": 1,
        "identities": {n: {"python": "3.11.7", "cpu": "AuthenticAMD AMD EPYC"} for n in names},
        "counts": {"v0.0.0": {ARGMAX: {"counts": [100_000_000], "functions": {FN: 90_000_000}},
                              RELU: {"counts": [10_000_000], "functions": {"relu": 9_000_000}}},
                   "v0.2.0": {ARGMAX: {"counts": [150_000_000], "functions": {FN: 140_000_000}},
                              RELU: {"counts": [20_000_000], "functions": {"relu": 19_000_000}}}}}))
    keys = [ARGMAX, RELU]
    _, found = ch.write(str(first), "m", str(out), benchmarks=BENCHMARKS, repo=str(repo))
    assert sorted(s["key"] for s in found) == sorted(keys)
    # the middle release, counted on another CPU, with Argmax's step in it and ReLU's after it
    mid = tmp_path / "mid"
    mid.mkdir()
    (mid / "counts.json").write_text(json.dumps({
        "names": ["v0.1.0"], "commits": [commits[1]], "calls": 1,
        "identities": {"v0.1.0": {"python": "3.11.7", "cpu": "GenuineIntel Xeon"}},
        "counts": {"v0.1.0": {ARGMAX: {"counts": [150_000_000], "functions": {FN: 140_000_000}},
                              RELU: {"counts": [10_000_000], "functions": {"relu": 9_000_000}}}}}))
    real_stored = ch.stored
    ch.stored = lambda d, r: real_stored(d, r, case_keys=keys)
    try:
        written, found = ch.write(str(mid), "m", str(out), benchmarks=BENCHMARKS, repo=str(repo), onto=True)
    finally:
        ch.stored = real_stored
    assert written == ["v0.0.0", "v0.1.0", "v0.2.0"]  # in the ledger's order, named by its subjects
    got = {(s["key"], s["base_commit"], s["cand_commit"]): s for s in found}
    assert set(got) == {(ARGMAX, commits[0], commits[1]), (RELU, commits[1], commits[2])}
    # both steps now have a side only the set's asv results hold: no function of the new run's on both sides
    assert got[(ARGMAX, commits[0], commits[1])]["function"] is None
    assert got[(ARGMAX, commits[0], commits[1])]["ratio"] == 1.5
    readme = (out / "README.md").read_text()
    assert "Not the same for every release, cpu" in readme and "GenuineIntel Xeon" in readme
    assert readme.count("mlx-asv count-history") >= 2  # both commands named
    assert len(list(out.glob("*-valgrind-counts.json"))) == 3


def test_onto_keeps_a_steps_function_where_the_pair_stays_neighbours(tmp_path):
    repo, commits = ledger_with(tmp_path, 3)
    first = run_dir(tmp_path, commits[:2])
    out = tmp_path / "ref" / "m"
    ch.write(str(first), "m", str(out), benchmarks=BENCHMARKS, repo=str(repo))
    later = tmp_path / "later"
    later.mkdir()
    (later / "counts.json").write_text(json.dumps({
        "names": ["v0.2.0"], "commits": [commits[2]], "calls": 1, "identities": {},
        "counts": {"v0.2.0": {ARGMAX: {"counts": [114_950_000]}}}}))
    real_stored = ch.stored
    ch.stored = lambda d, r: real_stored(d, r, case_keys=[ARGMAX, RELU])
    try:
        _, found = ch.write(str(later), "m", str(out), benchmarks=BENCHMARKS, repo=str(repo), onto=True)
    finally:
        ch.stored = real_stored
    assert [(s["key"], s["cand_commit"], s["function"]) for s in found] == [(ARGMAX, commits[1], FN)]


def test_onto_a_corrupt_results_file_is_one_line(tmp_path, capsys):
    repo, commits = ledger_with(tmp_path, 2)
    out = tmp_path / "ref" / "m"
    ch.write(str(run_dir(tmp_path, commits)), "m", str(out), benchmarks=BENCHMARKS, repo=str(repo))
    bad = next(out.glob("*-valgrind-counts.json"))
    bad.write_text("{not json")
    with pytest.raises(ch.HistoryError, match="git checkout"):
        ch.stored(str(out), str(repo), case_keys=[ARGMAX])


def test_a_step_between_a_wheel_and_a_source_build_names_one_function_not_two_libraries(tmp_path):
    """A wheel vendors libmlx-<hash>.so and its own BLAS, a source build links
    libmlx.so and Debian's libblas.so.3.11.0: the same function on both sides
    is one function, and the step names the one that changed."""
    repo, commits = ledger_with(tmp_path, 2)
    folder = tmp_path / "run"
    folder.mkdir()
    wheel = {"sgemm_ [libblas-41474fda.so.3.9.0]": 1_950_000, "exp [libmlx-e5853332.so]": 100_000}
    build = {"sgemm_ [libblas.so.3.11.0]": 1_940_000, "exp [libmlx.so]": 375_000}
    (folder / "counts.json").write_text(json.dumps({
        "names": ["v0.0.0", "v0.1.0"], "commits": commits, "calls": 1, "identities": {},
        "counts": {"v0.0.0": {ARGMAX: {"counts": [2_530_000], "functions": wheel}},
                   "v0.1.0": {ARGMAX: {"counts": [2_750_000], "functions": build}}}}))
    _, found = ch.write(str(folder), "m", str(tmp_path / "out"), benchmarks=BENCHMARKS, repo=str(repo))
    assert [(s["function"], s["function_base"], s["function_cand"]) for s in found] == [
        ("exp [libmlx.so]", 100_000, 375_000)]
