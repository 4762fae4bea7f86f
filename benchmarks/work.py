"""The work of every ops.py case on ``mlx_cpu``: the instructions one call of
the very callable asv times executes, counted under valgrind's callgrind
(benchmarks/lib/counting.py), recorded by asv as results with unit
"instructions".

    asv run -b "^work\\." v0.32.4^!                        # every case's count
    asv run -b "^work\\.Softmax\\." v0.22.0..v0.22.1        # one family over releases
    asv compare v0.32.3 v0.32.4                            # lists count changes beside the times

A count does not depend on the machine's load (its A/A spread between
processes of one build: docs/instructions.md), so ``asv compare``,
``asv continuous`` and ``asv find`` decide on it with asv's own factor where
time cannot. One class per ops.py family, named as there; the cases are the
family's, on ``mlx_cpu`` only: torch is pinned, the same code on both sides
of an MLX comparison (the time verdicts' A/A control), and valgrind counts
no GPU work.

A case's count is taken from the count store when this environment's MLX
build, the case's code, valgrind and the CPU are those it was counted under
(the main job and tools/instructions.py count both releases side by side
into it); otherwise ``setup`` counts it, in one valgrind process of its own.
Under asv it first checks that the installed MLX is the release filed.
Skipped (n/a): a release without the op, a machine without valgrind's
platform (macOS, Windows); failed, with one line naming the fix: no valgrind,
no C compiler, a case that crashes or outlasts ``timeout`` under valgrind.
"""

import inspect
import sys
import tempfile

from . import ops
from .common import CaseTable, check_mlx_release, unavailable_reason
from .lib import counting

# Calls counted a case: one (the A/A spread between processes is what the
# verdict's threshold comes from, not call-to-call variation).
CALLS = 1


class _Work:
    """A family's cases' instruction counts on mlx_cpu (a subclass per family)."""

    family = None  # the ops.py class
    unit = "instructions"
    param_names = ["case", "backend"]
    # A case's count can take minutes under valgrind on a 2-core machine
    # (~50x its time); a hung one is killed and recorded as failed.
    timeout = 1800
    number = 1
    repeat = 1

    def setup(self, label, backend):
        if not sys.platform.startswith("linux"):
            raise NotImplementedError(f"valgrind counts on Linux only, not on {sys.platform}")
        reason = unavailable_reason(backend)
        if reason:
            raise NotImplementedError(reason)
        check_mlx_release()
        key = counting.case_key(self.family.__name__, label, backend, counting.timed_method(self.family))
        with tempfile.TemporaryDirectory(prefix="mlx-asv-count-") as folder:
            row = counting.count_here([(key, self.family.__name__, label, backend)], CALLS, folder)[key]
        if "skip" in row:
            raise NotImplementedError(row["skip"])
        if "error" in row:
            raise RuntimeError(f"{key}: {row['error']}")
        self.count = sorted(row["counts"])[len(row["counts"]) // 2]

    def track_instructions(self, label, backend):
        return self.count


def _families():
    for name, cls in sorted(vars(ops).items()):
        if (not name.startswith("_") and inspect.isclass(cls) and issubclass(cls, CaseTable)
                and not inspect.isabstract(cls) and "mlx_cpu" in cls.params[1]):
            yield name, cls


for _name, _cls in _families():
    globals()[_name] = type(_name, (_Work,), {
        "family": _cls, "params": [list(_cls.params[0]), ["mlx_cpu"]], "__module__": __name__,
        "__doc__": f"Records the instructions one call of ops.{_name}'s cases executes on mlx_cpu."})
del _name, _cls
