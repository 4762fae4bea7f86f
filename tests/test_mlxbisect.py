"""tools/mlxbisect.py's search, with a fake measuring function (no builds, no asv)."""

import math
import random

import pytest

from mlx_asv.commands import mlxbisect as bs

KEYS = [f"ops.Softmax.time_op('case{i}', 'mlx_cpu')" for i in range(6)]


class FakeMachine:
    """Times per case and commit: 1 ms, times ``factor`` from commit ``step`` on
    (for the cases in ``stepping``); each process adds lognormal noise
    (``sd``), each sample a little more. Rounds accumulate per triple, as a
    protocol.Session's do."""

    def __init__(self, n, step, factor=1.3, sd=0.03, seed=0, stepping=None, second=None):
        self.commits = [f"{i:040x}" for i in range(n)]
        self.step, self.factor, self.sd = step, factor, sd
        self.rng = random.Random(seed)
        self.stepping = set(stepping if stepping is not None else KEYS)
        self.second = second or {}  # {key: (index, factor)}: another step for these cases
        self.sessions = {}
        self.calls = 0

    def true_time(self, key, i):
        t = 1e-3
        if key in self.stepping and i >= self.step:
            t *= self.factor
        if key in self.second and i >= self.second[key][0]:
            t *= self.second[key][1]
        return t

    def measure(self, triple, keys, rounds):
        self.calls += 1
        data = self.sessions.setdefault(tuple(triple), {})
        for _ in range(rounds):
            for key in keys if keys is not None else KEYS:
                for c in triple:
                    i = self.commits.index(c)
                    proc = self.true_time(key, i) * math.exp(self.rng.gauss(0, self.sd))
                    samples = [proc * math.exp(abs(self.rng.gauss(0, 0.01))) for _ in range(5)]
                    data.setdefault(key, {}).setdefault(c, []).append(samples)
        return data


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n,step", [(40, 17), (301, 1), (301, 300), (2, 1), (9, 5)])
def test_bisection_names_the_commit_that_made_it_slower(n, step, seed):
    m = FakeMachine(n, step, seed=seed)
    result = bs.bisect(m.commits, m.measure, log=lambda s: None)
    assert result.culprit == step, result.reason
    assert (result.good, result.bad) == (step - 1, step)
    assert result.keys and set(result.keys) <= set(KEYS) and not result.diverged
    assert len(result.steps) <= math.ceil(math.log2(n)) + 1


def test_no_slowdown_between_the_ends_names_nothing():
    m = FakeMachine(30, step=10, factor=1.0)
    result = bs.bisect(m.commits, m.measure, log=lambda s: None)
    assert result.culprit is None and "no case is slower" in result.reason
    assert result.steps == []


def test_noise_stops_the_bisection_but_never_misleads_it():
    """Processes that scatter by 5% and a 15% step, at most 4 rounds a step:
    some runs stop undecided, with the interval they got to, others name the
    commit; none names a wrong commit, and every interval holds the culprit."""
    named = stopped = 0
    for seed in range(12):
        m = FakeMachine(64, step=23, factor=1.15, sd=0.05, seed=seed)
        result = bs.bisect(m.commits, m.measure, rounds=2, max_rounds=4, log=lambda s: None)
        assert result.good <= 22 and result.bad >= 23
        if result.culprit is None:
            assert result.reason
            stopped += 1
        else:
            assert result.culprit == 23
            named += 1
    assert named and stopped  # both outcomes occur at this noise level


def test_an_undecided_step_is_measured_again_not_guessed():
    m = FakeMachine(16, step=6, factor=1.2, sd=0.05, seed=3)
    result = bs.bisect(m.commits, m.measure, rounds=1, max_rounds=8, log=lambda s: None)
    assert result.culprit == 6
    assert any(s.rounds > 1 for s in result.steps)  # some step needed more than its first round


def test_cases_with_another_culprit_are_reported_apart():
    """Two of six cases got slower at another commit: the bisection follows the
    majority and lists the others where they went the other way."""
    others = set(KEYS[:2])
    m = FakeMachine(32, step=20, stepping=set(KEYS) - others, second={k: (5, 1.4) for k in others})
    result = bs.bisect(m.commits, m.measure, log=lambda s: None)
    assert result.culprit == 20
    assert set(result.diverged) == others and set(result.keys) == set(KEYS) - others


def test_only_the_cases_slower_at_the_ends_are_followed():
    m = FakeMachine(20, step=12, stepping=set(KEYS[:3]))
    result = bs.bisect(m.commits, m.measure, log=lambda s: None)
    assert result.culprit == 12 and result.keys and set(result.keys) <= set(KEYS[:3])


def test_votes():
    from mlx_asv.decide import verdicts as vd

    def v(verdict, lo, hi):
        return vd.Verdict("k", verdict, (lo + hi) / 2, lo, hi, 0.0, 2, 2, 10, 0.01)

    assert bs._vote(v(vd.SLOWER, 1.2, 1.4), v(vd.SAME, 0.97, 1.03)) == bs.LEFT
    assert bs._vote(v(vd.SAME, 0.97, 1.03), v(vd.SLOWER, 1.2, 1.4)) == bs.RIGHT
    assert bs._vote(v(vd.SLOWER, 1.2, 1.4), v(vd.SLOWER, 1.1, 1.3)) == bs.BOTH
    assert bs._vote(v(vd.SAME, 0.97, 1.03), v(vd.SAME, 0.97, 1.03)) == bs.NEITHER
    assert bs._vote(v(vd.UNDECIDED, 0.9, 1.3), v(vd.UNDECIDED, 0.9, 1.3)) == bs.OPEN
    # slower on the left, the right side undecided: the step is on the left
    assert bs._vote(v(vd.SLOWER, 1.3, 1.5), v(vd.UNDECIDED, 0.9, 1.15)) == bs.LEFT
    assert bs._vote(v(vd.UNDECIDED, 0.9, 1.2), v(vd.SAME, 0.95, 1.05)) == bs.OPEN


def test_ledger_chain_of_releases(tmp_path, monkeypatch):
    from mlx_asv.envs import ledger

    table = tmp_path / "t.tsv"
    table.write_text("tag\tdate\n" + "".join(f"v0.{i}.0\t2025-0{i}-01T00:00:00+00:00\n" for i in range(1, 6)))
    repo = str(tmp_path / "ledger")
    monkeypatch.setattr(ledger, "desired_releases", lambda *a, **k: ledger.read_table(str(table)))
    commits, labels = bs.ledger_chain("v0.2.0", "v0.4.0", releases=True, repo=repo, log=lambda m: None)
    assert labels == ["v0.2.0", "v0.3.0", "v0.4.0"] and len(commits) == 3
    with pytest.raises(ledger.LedgerError, match="v0.9.0 is not a release"):
        bs.ledger_chain("v0.2.0", "v0.9.0", releases=True, repo=repo, log=lambda m: None)
