"""mlx_asv/decide/verdicts.py on synthetic samples with known answers.

Processes are simulated as on a noisy machine: each process has its own
offset (log-normal, sd ``between``) and its samples scatter around it
(``within``); a slowdown multiplies every sample of the candidate.
"""

import math
import random

import pytest

from mlx_asv.decide import verdicts as vd


def processes(rng, seconds, n, between=0.02, within=0.01, samples=5, factor=1.0):
    out = []
    for _ in range(n):
        level = seconds * factor * math.exp(rng.gauss(0, between))
        out.append([level * math.exp(abs(rng.gauss(0, within))) for _ in range(samples)])
    return out


def run(rng, n_cases, factor_of=lambda i: 1.0, rounds=2, between=0.02, **kw):
    comps = []
    for i in range(n_cases):
        t = 10 ** rng.uniform(-3, 0)
        comps.append(vd.Comparison(f"case{i}", processes(rng, t, rounds, between),
                                   processes(rng, t, rounds, between, factor=factor_of(i)), "mlx_cpu"))
    return vd.decide(comps, **kw)


def test_aa_false_alarm_rate_is_within_alpha():
    rng = random.Random(1)
    verdicts = [v for _ in range(20) for v in run(rng, 100)]
    alarms = sum(v.verdict in (vd.SLOWER, vd.FASTER) for v in verdicts)
    # 2000 A/A comparisons at alpha = 0.001 with a 2% margin: expect ~0.
    assert alarms <= 4
    # with 2 processes a side at 2% noise the 99.9% interval is about +-7%:
    # more than half are decided "same", the others undecided, none flagged
    assert sum(v.verdict == vd.SAME for v in verdicts) > 0.5 * len(verdicts)
    quiet = [v for _ in range(5) for v in run(rng, 100, between=0.005)]
    # (a case whose variance its prior finds implausible, p < OUTLIER_P, keeps
    # its own two degrees of freedom and stays undecided: ~1-2% of them here)
    assert sum(v.verdict == vd.SAME for v in quiet) > 0.97 * len(quiet)


def test_injected_slowdowns_are_found_with_the_right_sign():
    rng = random.Random(2)
    for factor, least in ((1.20, 0.99), (1.10, 0.9)):
        verdicts = [v for _ in range(5) for v in run(rng, 100, lambda i: factor, rounds=4, between=0.01)]
        slower = sum(v.verdict == vd.SLOWER for v in verdicts)
        assert slower >= least * len(verdicts), (factor, slower)
        assert not any(v.verdict == vd.FASTER for v in verdicts)
        # the interval covers the true ratio nearly always
        covered = sum(v.lo <= factor <= v.hi for v in verdicts)
        assert covered >= 0.98 * len(verdicts)


def test_faster_is_symmetric():
    rng = random.Random(3)
    verdicts = run(rng, 100, lambda i: 0.8, rounds=4, between=0.01)
    assert sum(v.verdict == vd.FASTER for v in verdicts) >= 99


def test_a_noisy_case_is_undecided_and_says_how_many_rounds():
    rng = random.Random(4)
    quiet = [vd.Comparison(f"q{i}", processes(rng, 0.01, 2, 0.01), processes(rng, 0.01, 2, 0.01), "g")
             for i in range(60)]
    # one case whose processes scatter by 30%, with a 15% slowdown
    noisy = vd.Comparison("noisy", [[1.0], [1.4]], [[1.05], [1.6]], "g")
    out = {v.key: v for v in vd.decide(quiet + [noisy])}
    assert out["noisy"].verdict == vd.UNDECIDED
    assert out["noisy"].lo < 1.0 < out["noisy"].hi
    # it keeps most of its own variance: much wider than the quiet ones
    assert out["noisy"].sd > 5 * out["q0"].sd
    assert out["noisy"].rounds_needed is None or out["noisy"].rounds_needed > 2


def test_rounds_to_decide_shrinks_the_interval_enough():
    q, sd = 3.3, 0.05
    n = vd.rounds_to_decide(math.log(1.15), sd, q, math.log(1.02), math.log(1.10))
    assert n is not None
    # with n processes a side the interval's half width clears the 2% margin
    assert q * sd * math.sqrt(2 / n) < math.log(1.15) - math.log(1.02)
    assert q * sd * math.sqrt(2 / (n - 1)) >= math.log(1.15) - math.log(1.02) or n == 2


def test_prior_recovers_a_common_variance():
    rng = random.Random(5)
    sigma2, d = 0.03 ** 2, 2
    variances = [sigma2 * rng.gammavariate(d / 2, 2 / d) for _ in range(2000)]
    s0sq, d0 = vd.fit_prior(variances, [d] * len(variances))
    assert s0sq == pytest.approx(sigma2, rel=0.15)
    assert d0 > 20  # they all share one variance: the prior is strong


def test_prior_of_scattered_variances_is_weak():
    rng = random.Random(6)
    variances = [math.exp(rng.gauss(math.log(1e-3), 2.0)) for _ in range(500)]
    _, d0 = vd.fit_prior(variances, [2] * len(variances))
    assert d0 < 5


def test_observation_is_the_fastest_sample():
    assert vd.process_observations([[2.0, 1.0, 3.0], [], None, [4.0]]) == [math.log(1.0), math.log(4.0)]


def test_single_process_a_side_uses_the_prior():
    rng = random.Random(7)
    comps = [vd.Comparison(f"c{i}", processes(rng, 0.1, 2, 0.01), processes(rng, 0.1, 2, 0.01), "g")
             for i in range(50)]
    comps.append(vd.Comparison("long", [[10.0]], [[12.5]], "g"))
    out = {v.key: v for v in vd.decide(comps)}
    assert out["long"].verdict == vd.SLOWER
    assert out["long"].n_base == out["long"].n_cand == 1


def test_minimum_detectable_effect_matches_simulated_power():
    rng = random.Random(8)
    sd, n = 0.02, 2
    prior_cases = [vd.Comparison(f"p{i}", processes(rng, 0.1, n, sd, within=0), processes(rng, 0.1, n, sd, within=0), "g")
                   for i in range(400)]
    prior = vd.priors([(list(c.observations()), c.group) for c in prior_cases])
    s0sq, d0 = prior["g"]
    mde = vd.minimum_detectable_effect(math.sqrt(s0sq), d0 + 2, n, n)
    hits = 0
    trials = 400
    for i in range(trials):
        c = vd.Comparison(f"t{i}", processes(rng, 0.1, n, sd, within=0),
                          processes(rng, 0.1, n, sd, within=0, factor=1 + mde), "g")
        hits += vd.decide([c], prior=prior)[0].verdict == vd.SLOWER
    assert 0.7 <= hits / trials <= 0.9


def test_locate_steps_finds_the_release_that_made_a_step():
    rng = random.Random(9)
    releases = ["r1", "r2", "r3", "r4", "r5"]
    series = {}
    for i in range(60):
        step = 3 if i < 20 else None  # a 20% step at r4 in a third of the cases
        points = [(r, processes(rng, 0.05, 2, 0.01, factor=1.2 if step is not None and j >= step else 1.0))
                  for j, r in enumerate(releases)]
        series[f"c{i}"] = ("g", points)
    found = vd.locate_steps(series)
    right = sum([(s.before, s.after) for s in found[f"c{i}"]] == [("r3", "r4")] for i in range(20))
    extra = sum(bool(found[f"c{i}"]) for i in range(20, 60))
    assert right >= 19
    assert extra <= 1
    assert all(s.verdict == vd.SLOWER and s.ratio > 1.1 for i in range(20) for s in found[f"c{i}"])


def test_a_refined_group_without_enough_cases_takes_its_backends_prior():
    rng = random.Random(10)
    quiet = [(list(map(vd.process_observations, (processes(rng, 0.01, 2, 0.01), processes(rng, 0.01, 2, 0.01)))),
              "mlx_cpu|-2") for _ in range(40)]
    noisy = [(list(map(vd.process_observations, (processes(rng, 1e-4, 2, 0.3), processes(rng, 1e-4, 2, 0.3)))),
              "mlx_cpu|-4") for _ in range(40)]
    lonely = [([[0.0, 0.01], [0.0, 0.01]], "mlx_cpu|0")]
    fitted = vd.priors(quiet + noisy + lonely)
    assert fitted["mlx_cpu|-2"][0] < fitted["mlx_cpu|-4"][0] / 50  # each decade its own noise
    # one case in its decade: the backend's prior, fitted on all 81
    assert fitted["mlx_cpu|0"] == vd.priors(quiet + noisy + [(lonely[0][0], "mlx_cpu")])["mlx_cpu"]


def test_bimodal_cases_neither_blunt_the_prior_nor_raise_alarms():
    """A few cases whose processes fall into two modes (one process 2-6x
    slower, as measured here on Concat and LayerNorm) must not make the prior
    so dispersed that quiet cases lose their power, and must not raise an
    alarm themselves: they keep their own variance."""
    rng = random.Random(7)
    comps = []
    for i in range(60):
        base = [[0.01 * math.exp(rng.gauss(0, 0.02))] for _ in range(4)]
        factor = 1.1 if i < 20 else 1.0
        cand = [[0.01 * factor * math.exp(rng.gauss(0, 0.02))] for _ in range(4)]
        comps.append(vd.Comparison(f"quiet{i}", base, cand, "mlx_cpu"))
    for i in range(8):  # A/A, one process in another mode on one side
        base = [[0.01 * math.exp(rng.gauss(0, 0.02))] for _ in range(4)]
        cand = [[0.01 * math.exp(rng.gauss(0, 0.02))] for _ in range(3)] + [[0.01 * rng.choice((2.5, 4.0, 6.0))]]
        comps.append(vd.Comparison(f"bimodal{i}", base, cand, "mlx_cpu"))
    observed = [(list(c.observations()), c.group) for c in comps]
    untrimmed = vd.priors(observed, trim=0.0)["mlx_cpu"]
    robust = vd.priors(observed)["mlx_cpu"]
    assert robust[1] > 4 * untrimmed[1]  # the quiet cases' d0 is no longer dragged down
    verdicts = {v.key: v for v in vd.decide(comps)}
    assert all(verdicts[f"bimodal{i}"].verdict not in (vd.SLOWER, vd.FASTER) for i in range(8))
    assert all(verdicts[f"bimodal{i}"].dof == 6 for i in range(8))  # own variance: 3 + 3 dof
    found = sum(verdicts[f"quiet{i}"].verdict == vd.SLOWER for i in range(20))
    found_untrimmed = sum(v.verdict == vd.SLOWER for v in vd.decide(comps, prior={"mlx_cpu": untrimmed})
                          if v.key in {f"quiet{i}" for i in range(20)})
    assert found >= 18 and found > found_untrimmed, (found, found_untrimmed)
    assert not any(verdicts[f"quiet{i}"].verdict in (vd.SLOWER, vd.FASTER) for i in range(20, 60))
