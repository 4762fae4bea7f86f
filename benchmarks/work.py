"""The work of every counted CPU case: the instructions one call of the very
callable asv times executes, counted under valgrind's callgrind
(benchmarks/lib/counting.py), recorded by asv as results with unit
"instructions". This module has ops.py's (``mlx_cpu``); work_fused_ops.py has
fused_ops.py's (``mlx_cpu``), work_metal_kernels.py metal_kernels.py's CPU
implementations (``ours_mlx_cpu``, ``mlx_linalg_cpu``), all from the one base
here (``_Work``, ``define``). models.py's are not counted: minutes a case
under valgrind (docs/work-verdicts.md).

    asv run -b "^work\\." v0.32.4^!                        # every ops.py case's count
    asv run -b "^work\\.Softmax\\." v0.22.0..v0.22.1        # one family over releases
    asv run -b "^work_(fused_ops|metal_kernels)\\." v0.32.4^!   # the kernel suites' CPU cases
    asv compare v0.32.3 v0.32.4                            # lists count changes beside the times

A count does not depend on the machine's load (its A/A spread between
processes of one build: docs/instructions.md), so ``asv compare``,
``asv continuous`` and ``asv find`` decide on it with asv's own factor where
time cannot. One class per family, named as in its module; the cases are the
family's, on MLX's CPU only: torch is pinned, the same code on both sides
of an MLX comparison (the time verdicts' A/A control), and valgrind counts
no GPU work.

A case's count is taken from the count store when this environment's MLX
build, the case's code, valgrind and the CPU are those it was counted under
(the main job and tools/instructions.py count both releases side by side
into it); otherwise ``setup`` counts it, in one valgrind process of its own.
Under asv it first checks that the installed MLX is the release filed.
Skipped (n/a): a release without the op, a case its module skips (the
pure-MLX QR of the largest single matrices), a machine without valgrind's
platform (macOS, Windows); failed, with one line naming the fix: no valgrind,
no C compiler, a case that crashes or outlasts ``timeout`` under valgrind.
"""

import sys
import tempfile

from .common import check_mlx_release, unavailable_reason
from .lib import counting

# Calls counted a case: one (the A/A spread between processes is what the
# verdict's threshold comes from, not call-to-call variation).
CALLS = 1

# asv's version of ops.py's work benchmarks: the one their history in
# results-reference/valgrind-x86-64 was recorded under (asv's hash of
# _Work.setup and track_instructions as they were until 2026-12-07). asv
# leaves out the results of another version, so it is kept when _Work's code
# changes; what an ops case counts is decided by the count store's key, not
# by this (tests/test_work.py checks the reference results carry it).
OPS_VERSION = "149f6a4e430fc4b1639644ec6d53101344eeb80a61d5a2cc85f06840838c0c80"


class _Work:
    """A family's cases' instruction counts on MLX's CPU (a subclass per
    family, made by ``define``)."""

    family = None  # the benchmark class counted (ops.Softmax, fused_ops.RMSNorm, ...)
    family_name = None  # as the counting path names it (counting.family_name)
    unit = "instructions"
    param_names = ["case", "backend"]
    # A case's count can take minutes under valgrind on a 2-core machine
    # (~50x its time); a hung one is killed and recorded as failed.
    timeout = 1800
    number = 1
    repeat = 1

    @classmethod
    def case_key(cls, label, backend):
        """The asv name of the case counted (its time benchmark's)."""
        return counting.case_key(cls.family_name, label, backend, counting.timed_method(cls.family))

    def setup(self, label, backend):
        if not sys.platform.startswith("linux"):
            raise NotImplementedError(f"valgrind counts on Linux only, not on {sys.platform}")
        # every counted case runs on MLX's CPU stream (metal_kernels' second
        # parameter is an implementation on it)
        reason = unavailable_reason("mlx_cpu")
        if reason:
            raise NotImplementedError(reason)
        check_mlx_release()
        key = self.case_key(label, backend)
        with tempfile.TemporaryDirectory(prefix="mlx-asv-count-") as folder:
            row = counting.count_here([(key, self.family_name, label, backend)], CALLS, folder)[key]
        if "skip" in row:
            raise NotImplementedError(row["skip"])
        if "error" in row:
            raise RuntimeError(f"{key}: {row['error']}")
        self.count = sorted(row["counts"])[len(row["counts"]) // 2]

    def track_instructions(self, label, backend):
        return self.count


def define(module, namespace, version=None):
    """One ``_Work`` subclass per counted family of benchmark module
    ``module`` ("ops", "fused_ops", "metal_kernels"), named as there, into
    ``namespace`` (a work module's globals), with the family's cases on its
    CPU parameter values (counting.COUNTED); ``version``: asv's version, if
    pinned. -> the classes' names."""
    names = []
    for family, cls, cpu in counting.families(module):
        name = cls.__name__
        attrs = {"family": cls, "family_name": family, "params": [list(cls.params[0]), list(cpu)],
                 "param_names": list(cls.param_names), "__module__": namespace["__name__"],
                 "__doc__": f"Records the instructions one call of {module}.{name}'s cases executes on "
                            f"{', '.join(cpu)}."}
        if version:
            attrs["version"] = version
        namespace[name] = type(name, (_Work,), attrs)
        names.append(name)
    return names


define("ops", globals(), version=OPS_VERSION)
