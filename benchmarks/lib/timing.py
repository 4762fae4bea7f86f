"""The timing loop outside asv: seconds a call of a callable, sampled.

asv times the benchmarks itself; this loop serves what times the same
callables without asv: the studies (studies/procspread.py, studies/paired.py)
and the tests that compare two callables timed alike in one process. It
lives in benchmarks/ so that whatever can import the benchmarks can import
it: asv's environments and a GPU host's python lack the mlx_asv package.
No name here starts with time_, track_ or mem_: asv imports every module
below benchmarks/ and would take such a function for a benchmark.
"""

import time


def call_seconds(fn, samples=1, number=1, warmup=0, clock=time.perf_counter):
    """Seconds a call of ``fn`` in each of ``samples`` samples, a sample being
    ``number`` calls back to back, after ``warmup`` calls that are not timed."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(samples):
        start = clock()
        for _ in range(number):
            fn()
        seconds.append((clock() - start) / number)
    return seconds
