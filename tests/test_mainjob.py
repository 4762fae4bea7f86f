"""The main job's verdict summary, the regressions page cut to confirmed verdicts,
and the report's same-run verdicts (no benchmark runs: sessions are synthetic)."""

import json
import random

from mlx_asv.report import regressions
from mlx_asv.decide import verdicts as vd
from mlx_asv.report.sessions import Sessions
from mlx_asv.commands import mainjob

A, B = "a" * 40, "b" * 40
SLOW = "ops.Softmax.time_op('dim=64x1000000 axis=-1', 'mlx_cpu')"
NOISE = "ops.Sum.time_op('dim=1000000 axis=0', 'torch_cpu')"


def synthetic(factor_of, n_other=30, rounds=2, seed=1):
    """{key: {commit: [samples per process]}} like tools/protocol.Session.data."""
    rng = random.Random(seed)
    keys = [SLOW, NOISE] + [f"ops.F.time_op('c{i}', 'mlx_cpu')" for i in range(n_other)]
    data = {}
    for k in keys:
        for commit, f in ((A, 1.0), (B, factor_of(k))):
            data.setdefault(k, {})[commit] = [[0.01 * f * (1 + abs(rng.gauss(0, 0.004))) for _ in range(5)]
                                              for _ in range(rounds)]
    return data


class FakeSession:
    def __init__(self, data):
        self.data = data


def work_report(factor_of, keys, tags=("v0.32.3", "v0.32.4")):
    """A count_run report over ``keys`` (mlx_cpu): the candidate's counts factor_of(key) times the base's."""
    from mlx_asv.decide import instructions

    counts = {tags[0]: {k: {"counts": [2_000_000], "functions": {"mlx::core::f [libmlx.so]": 1_500_000,
                                                                 "g": 500_000}} for k in keys},
              tags[1]: {k: {"counts": [round(2_000_000 * factor_of(k))],
                            "functions": {"mlx::core::f [libmlx.so]": round(2_000_000 * factor_of(k)) - 500_000,
                                          "g": 500_000}} for k in keys}}
    report = instructions.build_report(list(tags), counts, 1, 1, None)
    report.update(commits=[A, B], seconds=1.0)
    return report


def test_summary_gives_work_time_and_the_torch_control_with_their_evidence():
    # Two rounds, then two fresh ones (the confirmation): the change counts.
    data = synthetic(lambda k: 1.3 if k == SLOW else 1.0, rounds=4)
    mlx = [k for k in data if k.endswith("'mlx_cpu')")]
    work = work_report(lambda k: 1.4 if k == SLOW else 1.0, mlx)
    lines, pairs = mainjob.summary(FakeSession(data), [("v0.32.3", A), ("v0.32.4", B)], work)
    assert lines[0] == "v0.32.3 -> v0.32.4: 31 mlx_cpu cases, 1 torch_cpu"
    work_line = next(line for line in lines if line.startswith("  work, mlx_cpu"))
    assert "1 more, 0 fewer, 30 same, 0 undecided" in work_line and "same within 1%" in work_line
    time_line = next(line for line in lines if line.startswith("  time, mlx_cpu"))
    assert "1 slower, 0 faster" in time_line and "moderated t-test" in time_line and "fresh rounds" in time_line
    assert "torch_cpu control" in lines[3] and "0 of 1 flagged" in lines[3]
    changed = [line for line in lines if SLOW in line]
    assert len(changed) == 1 and "work more 1.400x" in changed[0] and "time slower 1.30x" in changed[0]
    assert "mlx::core::f [libmlx.so] 1.5M -> 2.3M" in changed[0]  # the function whose own instructions grew most
    assert not any(NOISE in line for line in lines)
    assert "tools/instructions.py" not in "\n".join(lines)  # counted already: no hint to count them
    # the per-case verdicts, as written to verdicts.json
    row = next(r for r in pairs[0]["cases"] if r["key"] == SLOW)
    assert row["work"]["verdict"] == "more" and row["work"]["threshold"] == 0.01
    assert row["time"]["verdict"] == vd.SLOWER and row["time"]["mde"] > 0
    assert next(r for r in pairs[0]["cases"] if r["key"] == NOISE)["work"] is None  # torch: never counted


def test_summary_without_counts_says_why_and_what_time_rules_out():
    data = synthetic(lambda k: 1.0, rounds=2)
    lines, _ = mainjob.summary(FakeSession(data), [("v0.32.3", A), ("v0.32.4", B)], None,
                               "failed: valgrind is not installed (Debian: apt install valgrind)")
    assert "  work, mlx_cpu: failed: valgrind is not installed (Debian: apt install valgrind)" in lines


def test_summary_fits_one_screen_however_much_changed():
    keys = [f"ops.F.time_op('c{i}', 'mlx_cpu')" for i in range(126)]
    data = synthetic(lambda k: 1.0, n_other=126, rounds=4)
    work = work_report(lambda k: 1.2, [k for k in data if k.endswith("'mlx_cpu')")])
    lines, pairs = mainjob.summary(FakeSession(data), [("v0.32.3", A), ("v0.32.4", B)], work)
    assert len(lines) <= 60 and lines[-1].startswith("    and ")
    assert len([r for r in pairs[0]["cases"] if r["work"] and r["work"]["verdict"] == "more"]) == len(keys) + 1


def test_a_change_without_fresh_rounds_is_undecided_and_named_as_unconfirmed():
    data = synthetic(lambda k: 1.3 if k == SLOW else 1.0, rounds=2)
    lines, pairs = mainjob.summary(FakeSession(data), [("v0.32.3", A), ("v0.32.4", B)])
    assert any(line.startswith("  time, mlx_cpu") and "0 slower, 0 faster" in line for line in lines)
    assert "  time changes not confirmed by fresh rounds (undecided): 1 (verdicts.json)" in lines
    assert next(r for r in pairs[0]["cases"] if r["key"] == SLOW)["time"]["note"].startswith("unconfirmed")
    assert mainjob.unconfirmed(data, [("v0.32.3", A), ("v0.32.4", B)]) == [SLOW]


def test_the_counts_asv_recorded_are_checked_against_the_counted():
    from benchmarks.lib import counting

    work = work_report(lambda k: 1.0, [SLOW])
    wk = counting.work_key(SLOW)
    assert wk == "work.Softmax.track_instructions('dim=64x1000000 axis=-1', 'mlx_cpu')"
    assert mainjob.asv_mismatches(work, {wk: {A: [[2_000_000]], B: [[2_000_000]]}}) == []
    assert mainjob.asv_mismatches(work, {wk: {A: [[2_000_000]], B: [[2_000_001]]}}) == [
        f"{SLOW} on v0.32.4: counted 2000000, asv has 2000001"]


def test_fresh_rounds_that_point_the_other_way_leave_it_undecided():
    data = synthetic(lambda k: 1.3 if k == SLOW else 1.0, rounds=4)
    for procs in (data[SLOW][A], data[SLOW][B]):
        del procs[2:]
    # the fresh rounds: the candidate now a little faster than the base
    data[SLOW][A] += [[0.0102] * 5, [0.0101] * 5]
    data[SLOW][B] += [[0.0100] * 5, [0.0100] * 5]
    v = mainjob.pair_verdicts(data, A, B)[SLOW]
    assert v.verdict == vd.UNDECIDED  # not counted as slower


class RecordingSession:
    """A Session stand-in: each round appends a process a side to the cases asked."""

    def __init__(self, data, folder, rounds, cost=None):
        self.data, self.folder, self.rounds, self.cost = data, str(folder), rounds, cost or {}
        self.asked = []

    def round(self, keys=None):
        self.rounds += 1
        self.asked.append(list(keys))
        for k in keys:
            for commit, f in ((A, 1.0), (B, 1.3 if k == SLOW else 1.0)):
                self.data[k][commit].append([0.01 * f] * 5)


def test_confirmation_measures_the_flagged_cases_twice_and_then_they_count(tmp_path):
    releases = [("v0.32.3", A), ("v0.32.4", B)]
    session = RecordingSession(synthetic(lambda k: 1.3 if k == SLOW else 1.0, rounds=2), tmp_path, 2)
    short = mainjob.confirm(session, releases, 2, started=__import__("time").time(), log=lambda m: None)
    assert short == [] and session.asked == [[SLOW], [SLOW]]
    assert mainjob.pair_verdicts(session.data, A, B)[SLOW].verdict == vd.SLOWER
    # resumed: the same cases, no round more than the two
    again = RecordingSession(session.data, tmp_path, 4)
    mainjob.confirm(again, releases, 2, started=__import__("time").time(), log=lambda m: None)
    assert again.asked == []


def test_confirmation_takes_the_cheapest_cases_the_budget_affords():
    cost = {"a": 1.0, "b": 10.0, "c": 2.0}
    # two rounds on each of 2 releases: 4 processes a case
    assert mainjob.affordable(["a", "b", "c"], cost, 12.0, 2) == ["a", "c"]
    assert mainjob.affordable(["a", "b", "c"], cost, 3.9, 2) == []


def test_default_bench_leaves_out_the_slow_families_and_other_backends():
    import re

    rx = re.compile(mainjob.default_bench(["mlx_cpu", "torch_cpu"]))
    assert rx.search("ops.Sum.time_op('dim=1000000 axis=0', 'torch_cpu')")
    assert not rx.search("ops.Sum.time_op('dim=1000000 axis=0', 'torch_cuda')")
    assert not rx.search("ops.MatMul.time_op('dim=1000000x64 dim=64x1024', 'mlx_cpu')")


def write_session(root, data, name="run1"):
    folder = root / ".asv" / "main" / name
    folder.mkdir(parents=True)
    (folder / "rounds.json").write_text(json.dumps({"commits": [A, B], "rounds": 2, "data": data}))


def test_regressions_page_keeps_only_confirmed_steps(tmp_path):
    write_session(tmp_path, synthetic(lambda k: 1.3 if k == SLOW else 1.0, rounds=4))
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.json").write_text(json.dumps({"revision_to_hash": {"1": A, "2": B}}))
    jump = lambda: [[1, 2, 0.01, 0.013]]  # noqa: E731
    entries = [[SLOW, "graphs/x.json", {}, 0, 0.013, 0.01, jump()],
               [NOISE, "graphs/y.json", {}, 1, 0.013, 0.01, jump()],   # asv's step on a pinned torch row
               ["ops.Other.time_op('c', 'mlx_cpu')", "graphs/z.json", {}, 2, 1.0, 0.5, [[1, 2, 0.5, 1.0]]]]
    (html / "regressions.json").write_text(json.dumps({"regressions": entries}))
    kept, dropped = regressions.filter_regressions(str(html), Sessions(root=str(tmp_path)))
    page = json.loads((html / "regressions.json").read_text())["regressions"]
    assert [e[0] for e in page] == [SLOW]
    assert [d[0] for d in dropped] == [NOISE, "ops.Other.time_op('c', 'mlx_cpu')"]
    assert "same run, verdict same" in dropped[0][3]
    assert "cross-run" in dropped[1][3]
    assert json.loads((html / "regressions-filtered.json").read_text())["kept"][0][0] == SLOW


def test_sessions_use_the_newest_session_with_both_commits(tmp_path):
    write_session(tmp_path, synthetic(lambda k: 1.3 if k == SLOW else 1.0, rounds=4), "old")
    found, where = Sessions(root=str(tmp_path)).verdicts(A, B)
    assert found[SLOW].verdict == vd.SLOWER and where.endswith("old")
    assert Sessions(root=str(tmp_path)).verdicts(A, "c" * 40) == ({}, None)
    # a calibration run is never evidence (its candidates are stretched on purpose)
    cal = tmp_path / ".asv" / "calibration" / "calib-1"
    cal.mkdir(parents=True)
    (cal / "rounds.json").write_text(json.dumps({"commits": [A, "c" * 40], "rounds": 2,
                                                 "data": synthetic(lambda k: 2.0)}))
    assert Sessions(root=str(tmp_path)).verdicts(A, "c" * 40) == ({}, None)


def test_reference_results_are_published_beside_the_machines_own(tmp_path):
    ref = tmp_path / "results-reference"
    (ref / "h200").mkdir(parents=True)
    (ref / "h200" / "machine.json").write_text("{}")
    (ref / "h200" / "a78e78eb-existing.json").write_text('{"new": 1}')
    (ref / "h200" / "count-steps.txt").write_text('{"steps": []}')  # a count history's steps, not *.json
    (ref / "h200" / "README.md").write_text("not copied")
    (ref / "h200-probes").mkdir()  # not a machine folder: no machine.json
    res = tmp_path / "results"
    (res / "h200").mkdir(parents=True)
    (res / "h200" / "a78e78eb-existing.json").write_text('{"mine": 1}')
    assert mainjob.copy_reference_results(str(ref), str(res)) == ["h200"]
    assert (res / "h200" / "machine.json").exists()
    assert json.loads((res / "h200" / "a78e78eb-existing.json").read_text()) == {"mine": 1}  # kept
    assert (res / "h200" / "count-steps.txt").exists() and not (res / "h200" / "README.md").exists()
    assert not (res / "h200-probes").exists()


def test_the_regressions_page_drops_an_unconfirmed_step(tmp_path):
    write_session(tmp_path, synthetic(lambda k: 1.3 if k == SLOW else 1.0, rounds=2))
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.json").write_text(json.dumps({"revision_to_hash": {"1": A, "2": B}}))
    (html / "regressions.json").write_text(json.dumps(
        {"regressions": [[SLOW, "graphs/x.json", {}, 0, 0.013, 0.01, [[1, 2, 0.01, 0.013]]]]}))
    kept, dropped = regressions.filter_regressions(str(html), Sessions(root=str(tmp_path)))
    assert kept == [] and [d[0] for d in dropped] == [SLOW]
    assert "undecided" in dropped[0][3]


def test_the_budget_counts_from_the_callers_start_when_it_gave_one(capsys):
    now = lambda: 10_000.0  # noqa: E731
    assert mainjob.started_at({}, now) == 10_000.0
    assert mainjob.started_at({"MLX_ASV_STARTED": "9700.5"}, now) == 9700.5
    # no time, a future time, or one older than the budget: now, with one line
    for bad in ("soon", "10100", str(10_000.0 - mainjob.BUDGET_S - 1)):
        assert mainjob.started_at({"MLX_ASV_STARTED": bad}, now) == 10_000.0
        assert capsys.readouterr().out.count("ignoring MLX_ASV_STARTED") == 1


def test_the_site_steps_after_publish_are_subcommands_that_run():
    """The main job runs these after asv publish; each must be a subcommand of
    ``python -m mlx_asv.commands`` (an unknown one would fail only at the end of a job)."""
    import os
    import subprocess
    import sys

    for name in mainjob.SITE_SUBCOMMANDS:
        proc = subprocess.run([sys.executable, "-m", "mlx_asv.commands", name, "--help"], cwd=mainjob.ROOT,
                              capture_output=True, text=True, timeout=120, env=dict(os.environ))
        assert proc.returncode == 0 and proc.stdout.startswith("usage: "), (name, proc.stderr[-300:])


def test_help_prints_usage_and_runs_nothing(monkeypatch, capsys):
    """``mlx-asv mainjob --help`` once ran the whole job: now it prints the usage
    (and the settings, which come from the environment) and exits 0 before
    anything runs; an unknown argument is one error line and exit 2."""
    import pytest

    def ran(*a, **k):
        raise AssertionError("the main job started")

    monkeypatch.setattr(mainjob, "started_at", ran)
    monkeypatch.setattr(mainjob, "backends", ran)
    monkeypatch.setattr(mainjob.protocol, "Session", ran)
    with pytest.raises(SystemExit) as e:
        mainjob.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage: ")
    assert "MLX_ASV_MAIN_BENCH" in out and "MLX_ASV_MAIN_ROUNDS" in out
    with pytest.raises(SystemExit) as e:
        mainjob.main(["--releases", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].endswith("error: unrecognized arguments: --releases 3")


def test_help_through_the_command_line_exits_0():
    import os
    import subprocess
    import sys

    for cmd in (["-m", "mlx_asv.commands", "mainjob"], ["tools/mainjob.py"]):
        proc = subprocess.run([sys.executable, *cmd, "--help"], cwd=mainjob.ROOT, capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, PYTHONPATH=mainjob.ROOT))
        assert proc.returncode == 0 and proc.stdout.startswith("usage: "), (cmd, proc.stderr[-300:])
        assert "What changed" not in proc.stdout and "backends left out" not in proc.stdout + proc.stderr
