#!/usr/bin/env python3
"""Does stopping callgrind's instrumentation between cases cost the counting
process time? (issue 25: cut counting time, measure first.)

count_child.py starts instrumentation before a case's counted call and stops
it after, and each start or stop discards every translation valgrind made, so
the next case's code is translated again. This study runs one counting process
of a run's cases.json two ways, at the same time (one core each):

    python studies/keep_instrumented.py ENV_PYTHON CASES_JSON OUT

``OUT/stop``: count_child.py as it is; ``OUT/keep``: the same child with its
``stop`` made a no-op, so instrumentation stays on from the first case's
counted call (the later builds run instrumented, and nothing is discarded).
It prints each way's wall seconds and whether their counts agree.
"""

import ctypes
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def keep_child(argv):
    """count_child.count with a marks library whose ``stop`` does nothing."""
    from benchmarks.lib import count_child

    class Keep:
        def __init__(self, lib):
            self._lib = lib

        def __getattr__(self, name):
            return (lambda: None) if name == "stop" else getattr(self._lib, name)

    real = ctypes.CDLL
    count_child.ctypes = type("Ctypes", (), {"CDLL": staticmethod(lambda p: Keep(real(p))),
                                             "c_char_p": ctypes.c_char_p})
    return count_child.count(argv[0], int(argv[1]), argv[2])


def main(python, cases, out):
    from benchmarks.lib import counting
    todo = json.load(open(cases, encoding="utf-8"))
    started, procs = time.time(), {}
    for way, child in (("stop", (counting.CHILD,)), ("keep", (os.path.abspath(__file__), "--child"))):
        procs[way] = counting.launch(python, todo, os.path.join(out, way), 1, counting.marks_library(), child=child)
    seconds = {}
    while len(seconds) < len(procs):
        for way, p in procs.items():
            if way not in seconds and p.poll() is not None:
                seconds[way] = round(time.time() - started, 1)
        time.sleep(0.5)
    counts = {way: {k: v.get("counts") for k, v in counting.read_process(os.path.join(out, way)).items()}
              for way in procs}
    same = sum(counts["stop"].get(k) == c for k, c in counts["keep"].items())
    print(json.dumps({"seconds": seconds, "cases": len(todo), "same counts": same}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(keep_child(sys.argv[2:]))
    main(*sys.argv[1:4])
