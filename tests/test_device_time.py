"""benchmarks/lib/device_time.py, benchmarks/device.py and studies/device_study.py's ncu parsing:
the logic with fake activity records and a recorded-format CSV; the GPU parts skip without a GPU."""

import json

import pytest

from benchmarks import device, ops
from benchmarks.lib import device_time as dt
from studies import device_study as ds

M = "at::cuda::(anonymous namespace)::spin_kernel(long)"


def test_split_calls_splits_at_markers_in_start_order():
    acts = [(M, 0, 5), ("k1", 10, 3), ("k2", 14, 4), (M, 30, 5), ("k1", 40, 3), (M, 60, 5)]
    segs = dt.split_calls(list(reversed(acts)), calls=2)
    assert [[a[0] for a in s] for s in segs] == [["k1", "k2"], ["k1"]]
    assert [dt.activity_seconds(s) for s in segs] == [7e-9, 3e-9]


def test_split_calls_refuses_a_run_the_markers_do_not_split_into_the_calls():
    acts = [(M, 0, 5), ("k1", 10, 3), (M, 30, 5)]
    with pytest.raises(ValueError, match="2 markers in the profiled run, expected 3"):
        dt.split_calls(acts, calls=2)
    with pytest.raises(ValueError, match="before the first marker"):
        dt.split_calls([("k0", -5, 1)] + acts, calls=1)


def test_overlapping_activities_are_summed_not_merged():
    acts = [(M, 0, 1), ("a", 10, 100), ("b", 20, 100), (M, 200, 1)]
    (seg,) = dt.split_calls(acts, calls=1)
    assert dt.activity_seconds(seg) == 200e-9


def test_device_module_mirrors_every_ops_table_with_new_ids():
    tables = {n for n, c in vars(ops).items() if isinstance(c, type) and issubclass(c, ops.CaseTable)
              and c.cases and hasattr(c, "time_op")}
    mirrored = {n for n, c in vars(device).items() if isinstance(c, type) and getattr(c, "ops_class", None)}
    assert mirrored == tables and "Sort" in mirrored
    assert device.Sort.params == [[c.label for c in ops.Sort.cases], list(device.DEVICE_BACKENDS)]
    assert device.Sort.track_device_time.unit == "seconds" and not hasattr(device.Sort, "time_op")


def test_without_a_gpu_a_device_case_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(dt, "unavailable_reason", lambda: "device time needs a CUDA GPU (fake)")
    cache = device.Sort().setup_cache()
    assert cache == {"why": "device time needs a CUDA GPU (fake)", "values": {}}
    with pytest.raises(NotImplementedError, match="needs a CUDA GPU"):
        device.Sort().setup(cache, "dim=64x128x1024 axis=2", "mlx_gpu")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        dt.per_call_seconds(lambda: None)


def test_every_device_class_shares_one_setup_cache_so_asv_measures_in_one_process():
    from asv_runner.benchmarks._base import get_setup_cache_key

    keys = {get_setup_cache_key(c().setup_cache) for c in device._tables().values()}
    assert len(keys) == 1 and len(device._tables()) > 20
    assert device.Sort.setup_cache.timeout >= 600


def test_setup_reads_the_cache_median_failure_skip_and_unselected():
    label = "dim=64x128x1024 axis=2"
    key = device.asv_name("Sort", label, "mlx_gpu")
    b = device.Sort()
    cache = {"why": None, "values": {key: [3.0, 1.0, 2.0, 9.0, 2.5]}}
    b.setup(cache, label, "mlx_gpu")
    assert b.track_device_time(cache, label, "mlx_gpu") == 1.0  # the fastest call (a plain list)
    cache["values"][key] = {"calls": [3.0, 2.0], "kernel_min": 1.5}
    b.setup(cache, label, "mlx_gpu")
    assert b.track_device_time(cache, label, "mlx_gpu") == 1.5  # the kernels' fastest, summed
    cache["values"][key] = "RuntimeError: cudaGraphAddKernelNode failed"
    with pytest.raises(RuntimeError, match="cudaGraphAddKernelNode"):
        b.setup(cache, label, "mlx_gpu")  # asv: failed, not skipped
    cache["values"][key] = {"skip": "mlx_gpu: not selected"}
    with pytest.raises(NotImplementedError, match="not selected"):
        b.setup(cache, label, "mlx_gpu")
    with pytest.raises(NotImplementedError, match="MLX_ASV_DEVICE_BENCH"):
        b.setup(cache, label, "torch_cuda")


def test_measure_all_measures_what_the_regex_selects_and_records_errors(monkeypatch):
    calls = []

    def fake(fn, calls=20):
        calls_made = fn()
        return [calls_made]

    monkeypatch.setattr(device, "measure", lambda fn, calls=None: fake(fn))

    class Ops:
        @staticmethod
        def callable(label, backend):
            calls.append((label, backend))
            if label == "bad":
                raise RuntimeError("boom\nsecond line")
            if label == "absent":
                raise NotImplementedError("not in this release")
            return lambda: 1e-4

    fam = type("Fam", (device._DeviceTable,), {"ops_class": Ops, "params": [["x", "bad", "absent"], ["mlx_gpu", "torch_cuda"]]})
    monkeypatch.setattr(dt, "per_call_seconds", fake)
    monkeypatch.setattr(device.common, "unavailable_reason", lambda be: None if be == "mlx_gpu" else "not selected")
    monkeypatch.setattr(device, "_free_device_memory", lambda: None)
    got = device.measure_all("'mlx_gpu'[)]$", classes={"Fam": fam})
    assert got == {device.asv_name("Fam", "x", "mlx_gpu"): [1e-4],
                   device.asv_name("Fam", "bad", "mlx_gpu"): "RuntimeError: boom",
                   device.asv_name("Fam", "absent", "mlx_gpu"): {"skip": "not in this release"}}
    assert ("x", "torch_cuda") not in calls
    got = device.measure_all("", classes={"Fam": fam})  # no regex: all; an unavailable backend is a skip
    assert got[device.asv_name("Fam", "x", "torch_cuda")] == {"skip": "torch_cuda: not selected"}
    monkeypatch.setenv(device.BENCH_ENV, r"\('x'")
    assert list(device.measure_all(classes={"Fam": fam})) == [device.asv_name("Fam", "x", "mlx_gpu"),
                                                              device.asv_name("Fam", "x", "torch_cuda")]


NCU_CSV = '''==PROF== Connected to process 1
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","dram__bytes_read.sum","dram__bytes_write.sum","gpu__time_duration.sum","smsp__inst_executed.sum"
"","","","","","","","byte","byte","nsecond","inst"
"0","1","python3","h","spin_kernel(long)","1","7","0","0","1,000","10"
"1","1","python3","h","binary_vv<Add>","1","13","8,388,608","4,194,304","20,000","3,670,016"
"2","1","python3","h","spin_kernel(long)","1","7","0","0","1,000","10"
"3","1","python3","h","binary_vv<Add>","1","13","8,388,600","4,194,304","20,100","3,670,016"
"4","1","python3","h","spin_kernel(long)","1","7","0","0","1,000","10"
"5","1","python3","h","spin_kernel(long)","1","7","0","0","1,000","10"
"6","1","python3","h","sort_a","1","13","100","50","5,000","7"
"7","1","python3","h","sort_b","1","13","200","50","5,000","8"
"8","1","python3","h","spin_kernel(long)","1","7","0","0","1,000","10"
==PROF== Disconnected from process 1
'''


def test_ncu_parse_gives_each_call_its_kernels_between_the_markers(tmp_path):
    (tmp_path / "n.csv").write_text(NCU_CSV)
    seq = {"mlx": "0.32.4", "seq": [{"case": "Add", "label": "x", "backend": "mlx_gpu", "calls": 2},
                                    {"case": "Sort", "label": "y", "backend": "mlx_gpu", "calls": 1}]}
    (tmp_path / "s.json").write_text(json.dumps(seq))
    got = ds.ncu_parse(str(tmp_path / "s.json"), str(tmp_path / "n.csv"))
    add, srt = got["cases"]
    assert [p["smsp__inst_executed.sum"] for p in add["per_call"]] == [3670016, 3670016]
    assert [p["dram__bytes_read.sum"] for p in add["per_call"]] == [8388608, 8388600]
    assert srt["per_call"][0]["smsp__inst_executed.sum"] == 15 and srt["per_call"][0]["kernels"] == ["sort_a", "sort_b"]


@pytest.mark.skipif(dt.unavailable_reason() is not None, reason=str(dt.unavailable_reason()))
def test_on_a_gpu_a_call_has_device_time():  # pragma: no cover - GPU machines only
    call = ops.Sort.callable("dim=64x128x1024 axis=2", "torch_cuda", small=True)
    secs = dt.per_call_seconds(call, calls=3)
    assert len(secs) == 3 and all(s > 0 for s in secs)


class _Proc:
    def __init__(self, rc, rows, stderr=""):
        self.returncode, self.stderr = rc, stderr
        self.stdout = "\n".join(["a stray warning"] + [json.dumps({"key": k, "value": v}) for k, v in rows])


def _keys(monkeypatch, keys):
    monkeypatch.setattr(device, "selected", lambda bench=None, classes=None: [(k, "F", k, "mlx_gpu") for k in keys])


def test_measure_isolated_tries_what_failed_after_a_failure_alone_then_measures_it_again(monkeypatch):
    keys = ["k1", "k2", "k3", "k4", "k5", "k6", "k7"]
    _keys(monkeypatch, keys)
    children = []

    def run(cmd, input, **kw):
        todo = json.loads(input)
        children.append(todo)
        assert cmd[1:3] == ["-m", "benchmarks.device"] and kw["env"]["PYTHONPATH"]
        if len(children) == 1:  # k2 fails, k3 and k5 fail after it (left behind?), the child dies in k6
            return _Proc(-11, [("k1", [1e-4]), ("k2", "RuntimeError: graph"), ("k3", "RuntimeError: peek"),
                               ("k4", {"skip": "not in this release"}), ("k5", "RuntimeError: graph")],
                         "Segmentation fault")
        if todo == ["k3"] and len(children) <= 3:  # alone: it runs (so it failed only after k2's failure)
            return _Proc(0, [("k3", {"calls": [9e-4], "kernel_min": 9e-4})])
        if todo == ["k5"]:  # alone: it fails, its own failure
            return _Proc(0, [("k5", "RuntimeError: graph")])
        if todo == ["k3", "k7"]:  # the GPU to itself: k3 measured again, in order with what the death left
            return _Proc(0, [("k3", [2e-4]), ("k7", [3e-4])])
        raise AssertionError(f"no such child: {todo}")

    got = device.measure_isolated("x", run=run)
    assert children[0] == keys and sorted(children[1:3]) == [["k3"], ["k5"]] and children[3:] == [["k3", "k7"]]
    assert got == {"k1": [1e-4], "k2": "RuntimeError: graph", "k3": [2e-4], "k4": {"skip": "not in this release"},
                   "k5": "RuntimeError: graph", "k6": "the measuring process died (exit -11): Segmentation fault",
                   "k7": [3e-4]}


def test_measure_isolated_runs_the_cases_alone_at_once_not_one_after_the_other(monkeypatch):
    import threading

    keys = ["k1", "k2", "k3", "k4"]
    _keys(monkeypatch, keys)
    together = threading.Barrier(3, timeout=5)  # the three children alone must be running at the same time
    children = []

    def run(cmd, input, **kw):
        todo = json.loads(input)
        children.append(todo)
        if len(todo) == 4:  # k1 fails; k2-k4 fail after it
            return _Proc(0, [(k, "RuntimeError: graph") for k in todo])
        together.wait()  # raises BrokenBarrierError where the children run one after the other
        return _Proc(0, [(todo[0], "RuntimeError: graph")])  # each fails alone too: their own failures

    got = device.measure_isolated("x", run=run, parallel=8)
    assert got == {k: "RuntimeError: graph" for k in keys} and len(children) == 4  # no more children


def test_measure_isolated_a_case_that_keeps_failing_after_failures_gets_a_child_of_its_own(monkeypatch):
    _keys(monkeypatch, ["k1", "k2", "k3"])
    children = []

    def run(cmd, input, **kw):
        todo = json.loads(input)
        children.append(todo)
        if len(todo) > 1:  # in order: the first fails, the rest fail after it
            return _Proc(0, [(todo[0], "RuntimeError: graph")] + [(k, "RuntimeError: peek") for k in todo[1:]])
        return _Proc(0, [(todo[0], [5e-4])])  # alone (at once, then alone on the GPU), it runs

    got = device.measure_isolated("x", run=run)
    assert children[:1] == [["k1", "k2", "k3"]] and sorted(children[1:3]) == [["k2"], ["k3"]]
    assert children[3:] == [["k2", "k3"], ["k3"]]  # k3 failed after k2's failure twice: a child of its own
    assert got == {"k1": "RuntimeError: graph", "k2": "RuntimeError: graph", "k3": [5e-4]}


def test_the_measuring_child_goes_on_after_a_failure(monkeypatch):
    import io

    monkeypatch.setattr(device, "_measure_iter", lambda want, calls, classes=None: iter(
        [("k1", [1.0]), ("k2", "RuntimeError: x"), ("k3", [1.0])]))
    out = io.StringIO()
    assert device._child(20, ["k1", "k2", "k3"], stdout=out) == 0
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["key"] for r in rows] == ["k1", "k2", "k3"] and all(r["cost_s"] >= 0 for r in rows)


def test_kernel_min_sums_each_kernels_fastest_and_falls_back_to_the_fastest_call():
    a = [[("k1", 0, 10), ("k2", 20, 5)], [("k1", 100, 8), ("k2", 120, 7)], [("k1", 200, 9), ("k2", 220, 6)]]
    assert dt.kernel_min_seconds(a) == pytest.approx(13e-9)  # 8 + 5, though no call took 13
    b = [[("k1", 0, 10), ("k2", 20, 5)], [("k1", 100, 8)]]  # not the same kernels: the fastest call
    assert dt.kernel_min_seconds(b) == pytest.approx(8e-9)
    assert device.observation({"calls": [15e-9, 15e-9], "kernel_min": 13e-9}) == 13e-9
    assert device.observation([3.0, 1.0]) == 1.0


def test_study_summary_sets_the_measures_side_by_side(tmp_path, capsys):
    for k, (wall, dev) in enumerate([(1e-4, 5e-5), (1.1e-4, 5e-5)]):
        with open(tmp_path / f"measure-a-r{k + 1}.jsonl", "w") as f:
            f.write(json.dumps({"case": "Sort", "label": "x", "backend": "mlx_gpu", "mlx": "0.32.4",
                                "wall": [wall, 2 * wall], "device": [2 * dev, dev], "wall_cost_s": 0.1,
                                "device_cost_s": 0.01}) + "\n")
            f.write(json.dumps({"case": "Sort", "label": "x", "backend": "mlx_gpu", "mlx": "0.32.4", "all": True,
                                "device": [1.0]}) + "\n")  # an --all row: not the study's table
            f.write(json.dumps({"process_s": 1.0, "mlx": "0.32.4"}) + "\n")
    per = [{"smsp__inst_executed.sum": 100.0, "dram__bytes_read.sum": 10.0, "dram__bytes_write.sum": 2.0,
            "gpu__time_duration.sum": 1.0, "kernels": ["k"]}] * 3
    (tmp_path / "ncu-0.32.4.json").write_text(json.dumps(
        {"mlx": "0.32.4", "cases": [{"case": "Sort", "label": "x", "backend": "mlx_gpu", "calls": 3, "per_call": per}]}))
    ds.summary(str(tmp_path))
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 0.32.4 | Sort 'x'"))
    assert "| 2 | 105.0 us | 6.74% | 50.00 us | 0.00% | 100 (0.000%) | 12 (0.000%) |" in row
    assert "mlx_gpu: median spread over 1 cases: wall 6.74%, device 0.00%" in out
