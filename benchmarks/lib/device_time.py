"""Device time of a timed callable: the summed duration, on the GPU, of the work each call ran.

What is timed on the host (op, evaluation, synchronisation) is mostly the
host's own jitter for a sub-millisecond kernel (issue 27). The GPU reports
what it ran: CUPTI's activity records give every kernel, copy and memset its
start and end on the device. PyTorch's profiler (``torch.profiler``, Kineto)
collects those records for the whole process, so it sees the kernels MLX's
CUDA backend launches as well as torch's own.

:func:`per_call_seconds` calls ``call`` (a zero-argument callable that
computes its result and waits for it, as ``benchmarks.common.Backend.timed``
makes them: the very callables asv times) ``calls`` times under the profiler
and returns, for each call, the summed duration of the device activities it
ran. Calls are told apart by a marker kernel (``torch.cuda._sleep``, whose
kernel is named ``spin_kernel``) launched and waited for between calls,
outside them: every call synchronises before it returns, so the device work
between two markers is one call's. A call's activities that overlap are
summed, not merged: this is work done, not elapsed time.

:func:`split_calls` and :func:`activity_seconds` hold the logic and take plain
(name, start_ns, duration_ns) tuples, so they are tested without a GPU.
"""

from __future__ import annotations

MARKER = "spin_kernel"  # torch.cuda._sleep's kernel


def split_calls(activities, calls, marker=MARKER):
    """[[(name, start_ns, duration_ns)] of each call] from the device activities of a profiled run.

    ``activities`` are (name, start_ns, duration_ns) tuples in any order; the
    run is ``marker, call, marker, call, ..., marker``. Raises ValueError
    where the markers do not split the run into exactly ``calls`` calls.
    """
    ordered = sorted(activities, key=lambda a: (a[1], a[2]))
    segments, current, seen = [], None, 0
    for act in ordered:
        if marker in act[0]:
            seen += 1
            if current is not None:
                segments.append(current)
            current = []
        elif current is not None:
            current.append(act)
        else:
            raise ValueError(f"device activity {act[0]!r} ran before the first marker")
    if seen != calls + 1:
        raise ValueError(f"{seen} markers in the profiled run, expected {calls + 1} for {calls} calls")
    return segments


def activity_seconds(segment):
    """Seconds of device work in one call: the sum of its activities' durations."""
    return sum(a[2] for a in segment) / 1e9


def _device_activities(prof):
    """(name, start_ns, duration_ns) of every device-side event the profiler recorded."""
    from torch.autograd import DeviceType

    out = []
    for e in prof.profiler.kineto_results.events():
        if e.device_type() == DeviceType.CUDA:
            out.append((e.name(), e.start_ns(), e.duration_ns()))
    return out


def unavailable_reason():
    """None where device time can be measured here, else why not (one line)."""
    try:
        import torch
    except ImportError:
        return "device time needs torch (its profiler reads CUPTI's activity records)"
    if not torch.cuda.is_available():
        return "device time needs a CUDA GPU (torch.cuda.is_available() is False)"
    return None


def kernel_min_seconds(segments):
    """The fastest each activity of a call ran, summed over the call's activities: the device seconds
    of a call whose every kernel, copy and memset took its own fastest time over the profiled calls.
    Where the calls did not run the same activities in the same order (by name), the fastest call's
    sum instead. ``segments`` are :func:`split_calls`'s (name, start_ns, duration_ns) lists.

    Why (issue 27): a call of several kernels is only as fast as its fastest call where every kernel
    was fast in the same call; each kernel's own minimum needs no such coincidence."""
    names = [tuple(a[0] for a in seg) for seg in segments]
    if not segments or any(n != names[0] for n in names) or not names[0]:
        return min(activity_seconds(s) for s in segments)
    return sum(min(seg[i][2] for seg in segments) for i in range(len(names[0]))) / 1e9


def per_call_seconds(call, calls=20, warmup=1):
    """Device seconds of each of ``calls`` calls of ``call`` (module docstring), after ``warmup``
    calls outside the profiled region. Raises RuntimeError where no device time can be measured."""
    return [activity_seconds(s) for s in per_call_activities(call, calls, warmup)]


def per_call_activities(call, calls=20, warmup=1):
    """:func:`split_calls`'s segments of ``calls`` profiled calls of ``call``: each call's device
    activities, (name, start_ns, duration_ns), after ``warmup`` calls outside the profiled region."""
    why = unavailable_reason()
    if why is not None:
        raise RuntimeError(why)
    import torch
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        call()

    def marker():
        torch.cuda._sleep(1)
        torch.cuda.synchronize()

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        marker()
        for _ in range(calls):
            call()
            marker()
    segments = split_calls(_device_activities(prof), calls)
    if not any(segments):
        raise RuntimeError("the profiler recorded no device work in any call")
    return segments


def kernel_names(call, calls=1):
    """The device activities' names of ``calls`` calls (for notes and tests on a GPU)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    call()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        torch.cuda._sleep(1)
        torch.cuda.synchronize()
        for _ in range(calls):
            call()
            torch.cuda._sleep(1)
            torch.cuda.synchronize()
    return [[a[0] for a in seg] for seg in split_calls(_device_activities(prof), calls)]
