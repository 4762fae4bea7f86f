"""The one timing rule of the GPU-machine harnesses (device_models_table.py,
device_kernels_check.py), on the one timing loop outside asv
(``benchmarks/lib/timing.py``'s ``call_seconds``, which times each call).

What is timed is a zero-argument callable that computes its result *and*
waits for it: the callables ``benchmarks.common.Backend.timed`` makes
(``mx.eval`` of the result for MLX, ``torch.cuda.synchronize`` /
``torch.mps.synchronize`` for torch GPUs), the very ones asv times. This
module adds no synchronization of its own and needs none.

The rule (:func:`sample`):

1. one warm-up call, outside the timed region (JIT compilation, lazy
   initialization, allocator growth);
2. then timed calls, each one call of the callable timed alone with
   ``time.perf_counter`` and the garbage collector off (as asv's timer),
   until at least ``min_calls`` calls *and* ``min_time`` seconds;
3. optional caps for slow cases: no new call after ``max_calls`` calls or
   once ``max_time`` seconds have passed (at least one timed call is made).

Reported (:func:`summarize`): the median and the interquartile range
(quartiles by statistics.quantiles, method "inclusive").
"""

from __future__ import annotations

import gc
import statistics
import time

from benchmarks.lib.timing import call_seconds


def timed_call(call):
    """Seconds of one call of ``call``, garbage collector off: one sample of one call of
    ``call_seconds``."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        # the clock named at each call, not call_seconds' default bound at its import: a test's
        # stand-in for time.perf_counter then times these calls too
        return call_seconds(call, clock=time.perf_counter)[0]
    finally:
        if was_enabled:
            gc.enable()


def sample(call, min_calls=5, min_time=0.5, max_calls=None, max_time=None):
    """One untimed warm-up call, then the seconds of each timed call (module docstring)."""
    if min_calls < 1:
        raise ValueError("min_calls must be at least 1")
    call()  # warm-up, outside the timed region
    times = []
    start = time.perf_counter()
    while True:
        times.append(timed_call(call))
        elapsed = time.perf_counter() - start
        if max_calls is not None and len(times) >= max_calls:
            break
        if max_time is not None and elapsed >= max_time:
            break
        if len(times) >= min_calls and elapsed >= min_time:
            break
    return times


def summarize(times):
    """(median, IQR) of ``times``, in the same unit; IQR 0 for a single time."""
    values = sorted(times)
    median = statistics.median(values)
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return median, q3 - q1
    return median, 0.0
