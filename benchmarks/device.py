"""ops.py's cases on the GPU backends, measured on the device: seconds of GPU work a call ran.

For every ``CaseTable`` of ops.py this module holds a class of the same name
and cases, on the GPU backends of :data:`DEVICE_BACKENDS`, whose
``track_device_time`` records the median, over :data:`CALLS` profiled calls,
of the summed device duration of each call's kernels, copies and memsets
(``benchmarks/lib/device_time.py``: CUPTI's activity records through
PyTorch's profiler), unit "seconds". The callable is ops.py's own
(``ops.Class.callable``): the very call ``ops.Class.time_op`` times on the
host, built the same way from the same cached inputs.

Why (issue 27): on the H200, 91 of ops.py's 93 ``mlx_gpu`` cases take under
a millisecond, and a process's fastest host-timed sample scattered between
processes by a median 11.7%, so the host's times could not tell +20% from
noise. The device's own duration of the same work leaves out the host's
launch and synchronisation (docs/gpu-device-measure.md has what was measured).

The ids are new (``device.Sort.track_device_time(case, backend)``); ops.py's
are unchanged. Where no CUDA GPU and torch are here, or the backend can't
run, a case is skipped (NotImplementedError, asv: n/a) with the reason.
"""

from __future__ import annotations

import inspect
import statistics

from . import ops
from .common import CaseTable
from .lib import device_time

DEVICE_BACKENDS = ("mlx_gpu", "mlx_gpu_compile", "torch_cuda")
CALLS = 20  # profiled calls a process; the median of their device times is recorded


class _DeviceTable:
    """Mixin: the device time of an ops.py case's callable (``ops_class`` names it)."""

    ops_class = None
    backends = DEVICE_BACKENDS
    param_names = ["case", "backend"]
    timeout = 300
    unit = "seconds"

    def setup(self, case, backend_name):
        why = device_time.unavailable_reason()
        if why is not None:
            raise NotImplementedError(why)
        self.fn = self.ops_class.callable(case, backend_name)

    def track_device_time(self, case, backend_name):
        return statistics.median(device_time.per_call_seconds(self.fn, calls=CALLS))

    track_device_time.unit = "seconds"


def _mirror(cls):
    """A class of this module with ``cls``'s name and cases, recording device time."""
    labels = [c.label for c in cls.cases]
    doc = f"Records the device seconds of ops.{cls.__name__}'s call on the GPU (the summed duration of its kernels)."
    return type(cls.__name__, (_DeviceTable,), {
        "__module__": __name__,
        "__doc__": doc,
        "ops_class": cls,
        "params": [labels, list(DEVICE_BACKENDS)],
    })


def _ops_tables():
    for name, obj in vars(ops).items():
        if inspect.isclass(obj) and issubclass(obj, CaseTable) and obj.cases and obj.__module__ == ops.__name__:
            if any(m.startswith("time_op") for m in dir(obj)):
                yield name, obj


for _name, _cls in _ops_tables():
    globals()[_name] = _mirror(_cls)
del _name, _cls
