"""studies/paired.py and the paired test (mlx_asv/decide/verdicts.py decide_paired):
known answers on synthetic pairs, the workers' turns, exact injection."""

import json
import math
import os
import random

import pytest

from mlx_asv.decide import verdicts as vd
from studies import paired


def quiet_cases(n=60, sd=0.01, pairs=3, seed=1, group="mlx_cpu|-2"):
    rng = random.Random(seed)
    return {f"k{i}": ([rng.gauss(0, sd) for _ in range(pairs)], group) for i in range(n)}


def test_paired_test_finds_a_shift_and_calls_the_rest_same():
    cases = quiet_cases()
    cases["slow"] = ([math.log(1.2) + d for d in (0.01, -0.01, 0.0)], "mlx_cpu|-2")
    cases["fast"] = ([math.log(0.8) + d for d in (0.01, -0.01, 0.0)], "mlx_cpu|-2")
    v = vd.decide_paired(cases, alpha=vd.ALPHA / 3)
    assert v["slow"].verdict == vd.SLOWER and v["slow"].lo < 1.2 < v["slow"].hi
    assert v["fast"].verdict == vd.FASTER
    assert all(v[f"k{i}"].verdict == vd.SAME for i in range(60))


def test_paired_test_is_undecided_where_pairs_disagree():
    cases = quiet_cases()
    cases["wild"] = ([0.3, -0.3, 0.25], "mlx_cpu|-2")  # pairs in two modes: its own variance stays
    v = vd.decide_paired(cases)
    assert v["wild"].verdict == vd.UNDECIDED
    assert vd.decide_paired({"none": ([], "g")})["none"].verdict == vd.UNDECIDED


def test_paired_sd_is_per_side_so_the_mde_is_that_of_n_pairs():
    cases = quiet_cases(sd=0.02, pairs=4)
    v = vd.decide_paired(cases)["k0"]
    se_pairs = math.sqrt(2) * v.sd / math.sqrt(4)  # the pairs' sd over sqrt n
    assert v.sd * math.sqrt(1 / 4 + 1 / 4) == pytest.approx(se_pairs)
    q = vd._t_quantile(1 - vd.ALPHA / 2, v.dof)
    assert math.log(v.hi) - math.log(v.ratio) == pytest.approx(q * se_pairs)


def test_false_alarms_stay_near_alpha_on_an_aa_simulation():
    # 20 runs x 150 null cases at the gate's alpha/3: expect ~0.001 of 3000
    alarms = 0
    for seed in range(20):
        v = vd.decide_paired(quiet_cases(n=150, seed=seed), alpha=vd.ALPHA / 3)
        alarms += sum(x.verdict in (vd.SLOWER, vd.FASTER) for x in v.values())
    assert alarms <= 3


def test_measure_takes_the_fastest_sample_within_its_budget():
    ticks = iter([0.0, 0.01] + [0.01 * t for t in range(100)])
    calls = []
    best = paired.measure(lambda: calls.append(1), samples=5, sample_seconds=0.02, budget=0.06,
                          clock=lambda: next(ticks))
    # one call took 0.01 -> 2 calls a sample; budget 0.06 -> 3 samples
    assert len(calls) == 1 + 1 + 3 * 2
    assert best == pytest.approx(0.005)


class FakeWorker:
    def __init__(self, answers, log, name):
        self.answers, self.log, self.name = answers, log, name
        self.stdin, self.stdout = self, self
        self.out = [json.dumps({"ready": True}) + "\n"]

    def write(self, line):
        case = tuple(json.loads(line))
        self.log.append((self.name, case[0]))
        self.out.append(json.dumps(self.answers[case[0]]) + "\n")

    def flush(self):
        pass

    def readline(self):
        return self.out.pop(0) if self.out else ""

    def close(self):
        pass

    def wait(self):
        return 0

    def poll(self):
        return 1


CASES = [("ops.F.time_op('x', 'mlx_cpu')", "F", "x", "mlx_cpu"), ("ops.G.time_op('y', 'torch_cpu')", "G", "y", "torch_cpu")]


def test_a_pair_asks_both_sides_in_turn_and_records_each_side():
    log = []
    made = iter([FakeWorker({"F": {"seconds": 1.0}, "G": {"seconds": 2.0}}, log, "a"),
                 FakeWorker({"F": {"seconds": 1.5}, "G": {"seconds": 2.5}}, log, "b")])
    out = paired.run_pair(CASES, 2, lambda: next(made))
    assert out[CASES[0][0]] == {"a": [1.0, 1.0], "b": [1.5, 1.5]}
    assert log == [("a", "F"), ("b", "F"), ("b", "F"), ("a", "F"), ("b", "G"), ("a", "G"), ("a", "G"), ("b", "G")]


def test_a_failing_case_is_recorded_as_failed_and_left_out_of_the_test():
    log = []
    made = iter([FakeWorker({"F": {"error": "RuntimeError: boom"}, "G": {"seconds": 2.0}}, log, "a"),
                 FakeWorker({"F": {"seconds": 1.5}, "G": {"seconds": 2.5}}, log, "b")])
    out = paired.run_pair(CASES, 2, lambda: next(made))
    assert out[CASES[0][0]] == {"failed": "RuntimeError: boom"}
    assert list(paired.observations([out, out])) == [CASES[1][0]]


def test_a_worker_that_dies_stops_the_run_with_the_case_named():
    class Dies(FakeWorker):
        def write(self, line):
            pass

    made = iter([FakeWorker({"F": {"seconds": 1.0}}, [], "a"), Dies({}, [], "b")])
    with pytest.raises(RuntimeError, match=r"stopped at ops\.F"):
        paired.run_pair(CASES[:1], 1, lambda: next(made))


def fake_pairs(n_cases=90, n_pairs=3, sd=0.01, seed=3):
    rng = random.Random(seed)
    pairs = []
    for _ in range(n_pairs):
        p = {}
        for i in range(n_cases):
            t = 0.002 if i % 2 else 0.0002
            a = [t * math.exp(rng.gauss(0, sd)) for _ in range(3)]
            b = [t * math.exp(rng.gauss(0, sd)) for _ in range(3)]
            p[f"ops.F.time_op('c{i}', 'mlx_cpu')"] = {"a": a, "b": b}
        pairs.append(p)
    return pairs


def test_evaluate_counts_aa_alarms_and_finds_large_exact_injections():
    ev = paired.evaluate(fake_pairs(sd=0.005))
    verdicts = ev["verdicts"]
    assert sum(v.verdict in (vd.SLOWER, vd.FASTER) for v in verdicts.values()) == 0
    assert len(ev["long"]) == 45
    hit, n = ev["found"][1.20]["long"]
    assert n > 0 and hit == n  # 20% at 0.5% noise: always found
    assert all(r["faster"] == 0 for r in ev["found"].values())
    text = paired.summary_text(ev, 300.0, {"x": 20.0})
    assert "0 false alarms" in text and "a pair took 5.0 min" in text and "left out" in text


def test_evaluate_misses_small_injections_in_loud_cases():
    ev = paired.evaluate(fake_pairs(sd=0.2))
    hit, n = ev["found"][1.05]["all"]
    assert hit < n / 2


def test_cases_of_leaves_out_the_dear_ones_and_other_methods():
    costs = {"ops.F.time_op('x', 'mlx_cpu')": 1.0, "ops.G.time_op('y', 'mlx_cpu')": 30.0,
             "ops.Compile.time_compile('z', 'mlx_cpu')": 1.0, "ops.F.time_op('x', 'torch_cuda')": 1.0}
    cases, left = paired.cases_of(paired.DEFAULT_BENCH, costs, 8.0)
    assert [c[0] for c in cases] == ["ops.F.time_op('x', 'mlx_cpu')"]
    assert cases[0][1:] == ("F", "x", "mlx_cpu")
    assert left == {"ops.G.time_op('y', 'mlx_cpu')": 30.0}


def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    assert paired.main(["--pairs", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert paired.main(["-b", "("]) == 2
    assert "bad -b regex" in capsys.readouterr().err
    assert paired.main(["--summary", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_an_interval_too_wide_for_a_float_is_undecided_not_an_error():
    cases = {"k": ([0.0, 5.0], "g")}  # two pairs, wildly apart, no prior to borrow from
    v = vd.decide_paired(cases, alpha=vd.ALPHA / 3)["k"]
    assert v.verdict == vd.UNDECIDED and v.hi > 1e10


def test_a_minimum_detectable_effect_past_a_float_is_infinite():
    assert vd.minimum_detectable_effect(5.0, 1, 2, 2, alpha=vd.ALPHA / 3) == math.inf


def test_faults_reports_the_page_faults_of_one_call_of_the_shown_cases():
    pytest.importorskip("torch")
    key = "ops.ReLU.time_op('dim=128x16x1024', 'torch_cpu')"
    other = "ops.Softplus.time_op('dim=128x16x1024', 'torch_cpu')"
    lines = []
    paired.faults([(other, "Softplus", "dim=128x16x1024", "torch_cpu"), (key, "ReLU", "dim=128x16x1024", "torch_cpu")],
                  show={key}, out=lines.append)
    assert len(lines) == 1 and lines[0].endswith(key)
    count, rest = lines[0].split(" faults a call ")
    assert int(count) >= 0 and float(rest.split("ms")[0]) > 0


# -- --fresh: pairs of fresh processes (asv's forkserver and runner) ---------

def test_a_fresh_pass_runs_both_sides_back_to_back_first_side_alternating():
    log = []
    seconds = {"a": 1.0, "b": 1.5}

    def run_side(bench, key, spawner):
        log.append((spawner, key.split(".")[1]))
        return {"seconds": seconds[spawner]}

    benches = {"ops.F.time_op": {}, "ops.G.time_op": {}}
    out = paired.fresh_pass(CASES, benches, ["a", "b"], 0, run_side=run_side)
    assert out[CASES[0][0]] == {"a": [1.0], "b": [1.5]}
    assert log == [("a", "F"), ("b", "F"), ("b", "G"), ("a", "G")]
    log.clear()
    paired.fresh_pass(CASES, benches, ["a", "b"], 1, run_side=run_side)
    assert log == [("b", "F"), ("a", "F"), ("a", "G"), ("b", "G")]


def test_a_fresh_side_that_fails_marks_the_case_failed():
    def run_side(bench, key, spawner):
        return {"failed": "RuntimeError: boom"} if spawner == "b" else {"seconds": 1.0}

    out = paired.fresh_pass(CASES[:1], {"ops.F.time_op": {}}, ["a", "b"], 0, run_side=run_side)
    assert out[CASES[0][0]] == {"failed": "RuntimeError: boom"}


def test_param_index_finds_the_case_in_asvs_parameter_grid():
    bench = {"name": "ops.F.time_op", "params": [["'x'", "'y'"], ["'mlx_cpu'", "'torch_cpu'"]]}
    assert paired.param_index(bench, "ops.F.time_op('y', 'mlx_cpu')") == 2
    with pytest.raises(KeyError):
        paired.param_index(bench, "ops.F.time_op('z', 'mlx_cpu')")


def test_the_unpaired_test_on_the_same_processes_finds_large_injections_and_no_aa_alarm():
    ev = paired.evaluate(fake_pairs(sd=0.005, n_pairs=4), unpaired=True)
    assert ev["test"].startswith("unpaired")
    assert sum(v.verdict in (vd.SLOWER, vd.FASTER) for v in ev["verdicts"].values()) == 0
    hit, n = ev["found"][1.20]["long"]
    assert n > 0 and hit == n
    assert all(r["faster"] == 0 for r in ev["found"].values())
    # each side's processes are the pairs' a (b) values: 4 a side, not pairs
    v = next(iter(ev["verdicts"].values()))
    assert (v.n_base, v.n_cand) == (4, 4)


def test_pairing_helps_where_pairs_share_a_moment_and_not_where_they_do_not():
    rng = random.Random(5)

    def pairs_with(shared):
        out = []
        for _ in range(4):
            p = {}
            for i in range(60):
                moment = rng.gauss(0, shared)  # the same for both sides of a pair
                p[f"ops.F.time_op('c{i}', 'mlx_cpu')"] = {
                    "a": [0.01 * math.exp(moment + rng.gauss(0, 0.01))],
                    "b": [0.01 * math.exp(moment + rng.gauss(0, 0.01))]}
            out.append(p)
        return out

    shared = pairs_with(0.05)
    paired_ev, unpaired_ev = paired.evaluate(shared), paired.evaluate(shared, unpaired=True)
    assert paired_ev["found"][1.10]["long"][0] > unpaired_ev["found"][1.10]["long"][0]


def test_gates_text_splits_the_passes_and_decides_each_both_ways():
    text = paired.gates_text(fake_pairs(sd=0.005, n_pairs=6), 3)
    assert text.startswith("3 gates of 2 pairs each")
    rows = [line for line in text.splitlines() if line.startswith("| paired") or line.startswith("| two-sample")]
    assert len(rows) == 2
    assert all("| 0 of 270 | 0 of 3 |" in r for r in rows)  # 90 cases x 3 gates, no alarm
    with pytest.raises(ValueError, match="can't make"):
        paired.gates_text(fake_pairs(n_pairs=3), 2)


def test_fresh_measures_a_case_with_asvs_forkserver_end_to_end(tmp_path, monkeypatch):
    key = "ops.SumAll.time_op('dim=1000000', 'mlx_cpu')"
    monkeypatch.setattr(paired.protocol, "load_costs", lambda path=None: {key: 0.2})
    out = tmp_path / "run"
    assert paired.main(["--fresh", "--pairs", "2", "--folder", str(out),
                        "-b", r"^ops\.SumAll\.time_op\('dim=1000000', 'mlx_cpu'\)$"]) == 0
    with open(out / "pairs.json") as f:
        saved = json.load(f)
    assert saved["fresh"] and len(saved["pairs"]) == 2
    for p in saved["pairs"]:
        a, b = p[key]["a"], p[key]["b"]
        # a sum of a million floats takes tens of microseconds to milliseconds here, never a second
        assert len(a) == len(b) == 1 and 1e-6 < a[0] < 1 and 1e-6 < b[0] < 1


def test_summary_first_keeps_only_the_first_passes(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "pairs.json").write_text(json.dumps({"pairs": fake_pairs(sd=0.005, n_pairs=5)}))
    assert paired.main(["--summary", str(run), "--gates", "1", "--first", "3"]) == 0
    assert capsys.readouterr().out.startswith("1 gates of 3 pairs each (passes 3 of 3 recorded)")
    assert paired.main(["--summary", str(run), "--gates", "3"]) == 2
    assert "give fewer --gates" in capsys.readouterr().err
