"""mlx_asv/gpu/timing.py: the one timing rule of the GPU-machine harnesses."""

import pytest

from mlx_asv.gpu import device_kernels_check as dkc
from mlx_asv.gpu import timing


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter, advanced only by the fake calls' costs."""
    state = {"t": 0.0}
    monkeypatch.setattr(timing.time, "perf_counter", lambda: state["t"])
    return state


def costly(clock, cost, log=None):
    def call():
        if log is not None:
            log.append(clock["t"])
        clock["t"] += cost
    return call


def test_warm_up_once_outside_the_timed_region(clock):
    costs = iter([7.0] + [0.1] * 100)  # a slow first (warm-up) call
    seen = []

    def call():
        seen.append(1)
        clock["t"] += next(costs)

    times = timing.sample(call, min_calls=3, min_time=0.0)
    assert len(seen) == len(times) + 1  # one untimed warm-up call
    assert times == pytest.approx([0.1, 0.1, 0.1])  # the 7 s warm-up is not among them


def test_at_least_min_calls_and_min_time(clock):
    # costs that are binary fractions: the fake clock adds them exactly
    assert len(timing.sample(costly(clock, 2**-10), 5, 0.5)) == 512  # min_time decides
    assert len(timing.sample(costly(clock, 0.25), 5, 0.5)) == 5  # min_calls decides
    assert len(timing.sample(costly(clock, 2**-4), 5, 0.5)) == 8


def test_caps_for_slow_cases(clock):
    assert len(timing.sample(costly(clock, 2**-10), 5, 0.5, 50, 3.0)) == 50
    # max_time stops before min_calls; one timed call at least
    assert len(timing.sample(costly(clock, 2.0), 5, 0.5, 50, 3.0)) == 2
    assert len(timing.sample(costly(clock, 5.0), 5, 0.5, 50, 3.0)) == 1


def test_each_timed_call_is_the_callable_alone(clock):
    """No synchronization is added: the callable (Backend.timed's) does its own."""
    calls = []
    times = timing.sample(costly(clock, 0.25, calls), 2, 0.0)
    assert times == [0.25, 0.25] and len(calls) == 3


def test_each_timed_call_is_one_sample_of_the_one_timing_loop(clock, monkeypatch):
    """benchmarks/lib/timing.py's call_seconds times every timed call (issue 26: one timing loop)."""
    seen = []
    real = timing.call_seconds

    def recorded(fn, **kw):
        seen.append(kw)
        return real(fn, **kw)

    monkeypatch.setattr(timing, "call_seconds", recorded)
    times = timing.sample(costly(clock, 0.25), 3, 0.0)
    assert times == [0.25] * 3 and len(seen) == 3  # the warm-up call is not one of them


def test_median_and_iqr():
    assert timing.summarize([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx((3.0, 2.0))
    assert timing.summarize([5.0, 1.0, 3.0]) == pytest.approx((3.0, 2.0))  # order does not matter
    assert timing.summarize([4.0]) == (4.0, 0.0)


def test_min_calls_must_be_positive():
    with pytest.raises(ValueError):
        timing.sample(lambda: None, 0, 0.0)


def test_kernels_check_uses_the_rule(clock):
    """device_kernels_check times a cell by the same rule: activate the backend,
    one warm-up call, then at least min_calls calls and min_time seconds."""
    activated = []

    class Prep:
        class backend:
            @staticmethod
            def activate():
                activated.append(True)

        fn = staticmethod(costly(clock, 0.01))

    median, iqr = dkc.time_call(Prep, min_calls=3, min_time=0.1)
    assert activated == [True]
    assert median == pytest.approx(0.01) and iqr == pytest.approx(0.0)
