"""Relative timing for the tests that show a timed callable really does its work.

Never a wall-clock bound: the tests compare two callables timed the same way
in one process (e.g. 10x the work must cost clearly more).
"""

import time


def call_times(fn, calls):
    """Seconds of each of ``calls`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times
