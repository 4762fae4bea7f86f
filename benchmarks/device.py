"""ops.py's cases on the GPU backends, measured on the device: seconds of GPU work a call ran.

For every ``CaseTable`` of ops.py this module holds a class of the same name
and cases, on the GPU backends of :data:`DEVICE_BACKENDS`, whose
``track_device_time`` records, over :data:`CALLS` profiled calls, each of the
call's kernels, copies and memsets at its fastest, summed (``observation``;
``benchmarks/lib/device_time.py``: CUPTI's activity records through
PyTorch's profiler), unit "seconds". The callable is ops.py's own
(``ops.Class.callable``): the very call ``ops.Class.time_op`` times on the
host, built the same way from the same cached inputs.

Why (issue 27): on the H200, 91 of ops.py's 93 ``mlx_gpu`` cases take under
a millisecond, and a process's fastest host-timed sample scattered between
processes by a median 11.7%, so the host's times could not tell +20% from
noise. The device's own duration of the same work leaves out the host's
launch and synchronisation (docs/gpu-device-measure.md has what was measured).

The ids are new (``device.Sort.track_device_time(case, backend)``); ops.py's
are unchanged. All cases are measured in one process (``setup_cache``, below). Where no CUDA GPU and torch are here, or the backend can't
run, a case is skipped (NotImplementedError, asv: n/a) with the reason.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import os
import re
import statistics
import subprocess
import sys
import time

from . import common, ops
from .common import CaseTable
from .lib import device_time

DEVICE_BACKENDS = ("mlx_gpu", "mlx_gpu_compile", "torch_cuda")
CALLS = 40  # profiled calls a case; each kernel's fastest over them, summed, is recorded (observation)
# A regex over this module's asv names (re.search) that limits what the one measuring process
# measures; gpu/gpu_asv.sh sets it to its bench regex, so a run of device.Sort measures Sort alone.
BENCH_ENV = "MLX_ASV_DEVICE_BENCH"


def observation(per_call):
    """What the track records of a process's profiled calls. ``per_call`` is :func:`measure`'s
    value, {"calls": [device seconds of each call], "kernel_min": seconds}: its ``kernel_min``, each
    kernel's fastest time over the calls summed (``device_time.kernel_min_seconds``); or a plain
    list of each call's device seconds (earlier results, studies/device_study.py's rows): the fastest.
    A process's fastest, as the gate's observation of a process is its fastest sample (interference
    only adds time): on the H100, a ~4 us kernel's median over 20 calls moved between processes
    from 3.9 to 5.1 us where its fastest call stayed at 3.84-4.00 us (docs/gpu-device-measure.md)."""
    if isinstance(per_call, dict):
        return per_call["kernel_min"]
    return min(per_call)


def measure(fn, calls=None):
    """The value the track keeps of one case's callable: {"calls": each call's device seconds,
    "kernel_min": the kernels' fastest times summed} over ``calls`` profiled calls."""
    segments = device_time.per_call_activities(fn, calls=calls or CALLS)
    return {"calls": [device_time.activity_seconds(s) for s in segments],
            "kernel_min": device_time.kernel_min_seconds(segments)}


def asv_name(cls_name, label, backend):
    return f"device.{cls_name}.track_device_time('{label}', '{backend}')"


def measure_all(bench=None, calls=CALLS, classes=None, log=None):
    """{asv name: [device seconds of each call] or "Type: error line"} of every case of this module
    whose asv name matches ``bench`` (default $MLX_ASV_DEVICE_BENCH, else all), measured one after
    the other in this process. A case that fails is recorded with its error and the others go on
    (asv: that case failed); a case that can't run here (its backend is not selected or missing, or
    the release lacks the op) is recorded as {"skip": why} (asv: skipped)."""
    wanted = {key for key, *_ in selected(bench, classes)}
    out = {}
    for key, value in _measure_iter(lambda k: k in wanted, calls, classes):
        out[key] = value
        if log:
            log(key, value)
    return out


def _measure_iter(want, calls, classes=None):
    for key, name, label, backend in selected("", classes):
        if not want(key):
            continue
        cls = (classes or _tables())[name]
        why = common.unavailable_reason(backend)
        if why is not None:
            yield key, {"skip": f"{backend}: {why}"}
            continue
        fn = None
        try:
            fn = cls.ops_class.callable(label, backend)
            value = measure(fn, calls)
        except NotImplementedError as e:
            value = {"skip": str(e) or "not in this release"}
        except Exception as e:  # noqa: BLE001 - this case failed; the others go on
            value = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
        finally:
            fn = None
            common.CACHE.clear()
            _free_device_memory()
        yield key, value


def selected(bench=None, classes=None):
    """[(asv name, class name, label, backend)] of the cases :func:`measure_all` would measure, in its order."""
    bench = (os.environ.get(BENCH_ENV) or None) if bench is None else bench
    rx = re.compile(bench) if bench else None
    return [(asv_name(name, label, be), name, label, be) for name, cls in sorted((classes or _tables()).items())
            for label in cls.params[0] for be in cls.params[1]
            if not (rx and rx.search(asv_name(name, label, be)) is None)]


PARALLEL = 16  # the most measuring children at once in a round of cases measured each alone


def _one_child(todo, calls, env, timeout_s, run):
    """Run one measuring child over ``todo`` (asv names, in order): (process, {key: value})."""
    proc = run([sys.executable, "-m", "benchmarks.device", "--measure", str(calls)], input=json.dumps(todo),
               capture_output=True, text=True, env=env, timeout=timeout_s)
    got = {}
    for line in proc.stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("key") in todo:
            got[row["key"]] = row["value"]
    return proc, got


def _died(proc):
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:200]
    return f"the measuring process died (exit {proc.returncode}): {tail}"


def measure_isolated(bench=None, calls=CALLS, timeout_s=1200, run=subprocess.run, parallel=PARALLEL):
    """:func:`measure_all`'s result, measured in a child process that goes on after a failed case.
    A failed CUDA call can leave its error behind for later cases of the same process: measured on
    the H100, after the Sort cases along axes 0 and 1 had failed (cudaGraphAddKernelNode: invalid
    argument), every later MLX case of the process failed (cudaPeekAtLastError: invalid argument)
    on MLX 0.30.4-0.32.3 but not on 0.32.4, and a small MLX sort and sum run between them passed,
    so no check inside the process tells (docs/gpu-device-measure.md). So a child's first failure
    is recorded, and every case that failed after it is tried again alone in a fresh child, all
    such children at once (at most ``parallel`` at a time): a failure there is the case's own
    (recorded; a failure needs no quiet GPU), and a case that ran there, beside the others, is
    measured again with the GPU to itself: all of them in one fresh child, in order, under the
    same rule. So a recorded failure is always the first of its process, a recorded time is never
    one measured beside another child, and k failures left behind cost one round of children at
    once, not k children one after the other (on MLX 0.32.4, whose 4 known Sort failures are each
    their own, one round: ~6 s of a child's start instead of three). A case that runs alone but
    fails after a failure twice is measured in a child of its own, alone on the GPU. A child that
    dies records its current case as failed. ``$MLX_ASV_DEVICE_LOG``, where set, names a file that
    gets each child's output (a JSON line a case, with its seconds of measuring) and error output."""
    order = [key for key, *_ in selected(bench)]
    rank = {k: i for i, k in enumerate(order)}
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [parent] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out, t0, count = {}, time.perf_counter(), {"children": 0, "alone": 0}
    passed_alone = {}  # key: times it ran alone beside other children, then failed after a failure again

    def log(tag, todo, proc):
        count["children"] += 1
        if os.environ.get("MLX_ASV_DEVICE_LOG"):
            with open(os.environ["MLX_ASV_DEVICE_LOG"], "a", encoding="utf-8") as f:
                f.write(f"# child {count['children']} ({tag}): {len(todo)} cases, exit {proc.returncode}, "
                        f"done {time.perf_counter() - t0:.1f} s after the first child's start\n"
                        f"{proc.stdout}\n" + "".join(f"# stderr: {x}\n" for x in proc.stderr.splitlines()[-20:]))

    def in_order(keys):
        return sorted(keys, key=rank.__getitem__)

    todo = order
    while todo:
        proc, got = _one_child(todo, calls, env, timeout_s, run)
        log("in order", todo, proc)
        again, failed = [], False
        for key in todo:
            if key not in got:
                continue
            if isinstance(got[key], str):
                if failed:
                    again.append(key)  # after this process's first failure: tried again, alone
                    continue
                failed = True
            out[key] = got[key]
        left = [k for k in todo if k not in got]
        if proc.returncode != 0 and left:
            out[left[0]] = _died(proc)
            left = left[1:]
        elif proc.returncode == 0 and left:
            for k in left:
                out[k] = "the measuring process ended without measuring it"
            left = []
        solo = [k for k in again if passed_alone.get(k, 0) >= 1]  # ran alone once already: its own child
        for key in solo:
            proc, got = _one_child([key], calls, env, timeout_s, run)
            log("alone on the GPU", [key], proc)
            out[key] = got[key] if key in got else _died(proc)
        rerun = []
        batch = [k for k in again if k not in solo]
        if batch:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                done = list(pool.map(lambda k: (k, _one_child([k], calls, env, timeout_s, run)), batch))
            count["alone"] += len(batch)
            for key, (proc, got) in done:
                log("alone, at once", [key], proc)
                value = got[key] if key in got else _died(proc)
                if isinstance(value, dict) and "skip" not in value or isinstance(value, list):
                    passed_alone[key] = passed_alone.get(key, 0) + 1
                    rerun.append(key)  # it ran beside other children: measured again, the GPU to itself
                else:
                    out[key] = value  # its own failure (or skip): it was alone in its process
        todo = in_order(rerun + left)
    sys.stderr.write(f"device: {len(out)} cases measured by {count['children']} measuring process(es) "
                     f"({count['alone']} of them a case alone, at once) in {time.perf_counter() - t0:.1f} s\n")
    return out


def _child(calls, keys, stdout=sys.stdout):
    """The measuring child: ``keys`` in order, one JSON line each (with the case's seconds of
    measuring, ``cost_s``), failures included (:func:`measure_isolated` decides which to trust)."""
    wanted = set(keys)
    t = time.perf_counter()
    for key, value in _measure_iter(lambda k: k in wanted, calls):
        now = time.perf_counter()
        stdout.write(json.dumps({"key": key, "value": value, "cost_s": round(now - t, 4)}) + "\n")
        stdout.flush()
        t = time.perf_counter()
    return 0


def _free_device_memory():
    mx = common.mlx()
    if mx is not None:
        clear = getattr(mx, "clear_cache", None) or getattr(getattr(mx, "metal", None), "clear_cache", None)
        if clear:
            clear()
    t = common.torch()
    if t is not None and t.cuda.is_available():
        t.cuda.empty_cache()


class _DeviceTable:
    """Mixin: the device time of an ops.py case's callable (``ops_class`` names it).

    Every class of this module shares one ``setup_cache`` (asv keys a cache by the function's
    module and line): asv runs it once, in one process, before the first device benchmark, and it
    measures every selected case of every class there (:func:`measure_all`); each case's process
    then only reads its value from the cache. A process per case, as ops.py's time_ benchmarks
    have, would add ~0.5 s a case (MLX's import and CUDA's start in every process) for a measure
    that does not need it: the device's own time of a call does not depend on the host's state."""

    ops_class = None
    backends = DEVICE_BACKENDS
    param_names = ["case", "backend"]
    timeout = 300
    unit = "seconds"

    def setup_cache(self):
        why = device_time.unavailable_reason()
        if why is not None:
            return {"why": why, "values": {}}
        return {"why": None, "values": measure_isolated()}

    setup_cache.timeout = 1200

    def setup(self, cache, case, backend_name):
        if cache["why"]:
            raise NotImplementedError(cache["why"])
        # no MLX import here: the measuring process did all of it, this process only reads its value
        got = cache["values"].get(asv_name(type(self).__name__, case, backend_name))
        if got is None:
            raise NotImplementedError(f"not measured: ${BENCH_ENV} did not select it")
        if isinstance(got, dict) and "skip" in got:
            raise NotImplementedError(got["skip"])
        if isinstance(got, str):
            raise RuntimeError(got)  # the case failed in the measuring process: asv records it as failed
        self.value = observation(got)

    def track_device_time(self, cache, case, backend_name):
        return self.value

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


def _tables():
    return {name: obj for name, obj in globals().items()
            if inspect.isclass(obj) and issubclass(obj, _DeviceTable) and obj.ops_class is not None}


for _name, _cls in _ops_tables():
    globals()[_name] = _mirror(_cls)
del _name, _cls


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        sys.exit(_child(int(sys.argv[2]), json.load(sys.stdin)))
    sys.exit("usage: python -m benchmarks.device --measure CALLS < KEYS.json (benchmarks/device.py's measuring child)")
