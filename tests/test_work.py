"""The work benchmarks (benchmarks/work.py) and the count store
(benchmarks/lib/counting.py): the very callable asv records, under real
valgrind, checked against a count made another way; the store's key; what
a missing tool or another platform does."""

import json
import os
import shutil
import sys

import pytest

from benchmarks import ops, work
from benchmarks.lib import counting

HAVE_VALGRIND = bool(shutil.which("valgrind") and shutil.which("cc")
                     and os.path.exists("/usr/include/valgrind/callgrind.h"))
SMALL, LARGE = "dim=128x16x1024", "dim=64x128x1024"


@pytest.fixture
def store(tmp_path, monkeypatch):
    folder = tmp_path / "store"
    monkeypatch.setenv(counting.STORE_ENV, str(folder))
    return folder


def test_one_work_class_per_ops_family_with_its_cases_on_mlx_cpu_only():
    families = [n for n in dir(ops) if isinstance(getattr(ops, n), type) and issubclass(getattr(ops, n), ops.CaseTable)
                and not n.startswith("_") and getattr(ops, n).cases]
    for name in families:
        cls = getattr(work, name)
        assert cls.params == [list(getattr(ops, name).params[0]), ["mlx_cpu"]]
        assert cls.unit == "instructions" and cls.family is getattr(ops, name)
    assert counting.work_key(counting.case_key("ReLU", SMALL, "mlx_cpu")) == \
        f"work.ReLU.track_instructions('{SMALL}', 'mlx_cpu')"
    # Compile times mx.compile in time_compile: its key is that benchmark's, so work and time meet
    assert counting.timed_method(ops.Compile) == "time_compile"
    assert counting.work_key("ops.Compile.time_compile('softmax dim=16x1024', 'mlx_cpu')") == \
        "work.Compile.track_instructions('softmax dim=16x1024', 'mlx_cpu')"


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind, its headers and a C compiler")
def test_the_recorded_count_is_the_calls_work(store, tmp_path, monkeypatch):
    """asv's callable (setup, then track_instructions) under real valgrind:
    the count equals that of a counting process launched directly in this
    environment with the recorded store set aside, and ReLU on 8 Mi elements
    executes about 4 times the instructions of ReLU on 2 Mi: the call's work.
    A second asv process takes it from the store without valgrind."""
    pytest.importorskip("mlx.core")
    got = {}
    for label in (SMALL, LARGE):
        bench = work.ReLU()
        bench.setup(label, "mlx_cpu")
        got[label] = bench.track_instructions(label, "mlx_cpu")
    assert 3.6 < got[LARGE] / got[SMALL] < 4.4, got
    assert got[LARGE] > 64 * 128 * 1024 / 8  # at least an instruction a vector of 8 floats
    # counted again, another way: one process of its own, store off
    key = counting.case_key("ReLU", SMALL, "mlx_cpu")
    proc = counting.launch(sys.executable, [(key, "ReLU", SMALL, "mlx_cpu")], str(tmp_path / "direct"), 1,
                           counting.marks_library(str(tmp_path)))
    assert proc.wait(timeout=600) == 0
    direct = counting.read_process(str(tmp_path / "direct"))[key]["counts"][0]
    assert abs(direct / got[SMALL] - 1) < 0.003, (direct, got[SMALL])  # the A/A spread of >= 1 M instructions
    # from the store: no counting process
    monkeypatch.setattr(counting, "launch", lambda *a, **kw: pytest.fail("counted again"))
    again = work.ReLU()
    again.setup(SMALL, "mlx_cpu")
    assert again.track_instructions(SMALL, "mlx_cpu") == got[SMALL]


def test_the_store_key_is_what_decides_the_count(store):
    ident = {"mlx_build": "x", "code": "c", "calls": 1, "cpu": "AuthenticAMD AMD EPYC"}
    counting.store(ident, "k", {"counts": [5], "functions": {"f": 5}})
    assert counting.stored(ident, "k")["counts"] == [5]
    assert counting.stored(dict(ident, mlx_build="y"), "k") is None  # another MLX build
    assert counting.stored(dict(ident, code="d"), "k") is None  # the case's code changed
    assert counting.stored(dict(ident, cpu="GenuineIntel Xeon"), "k") is None  # another CPU
    assert counting.stored(ident, "other") is None
    # a failed case is not kept; a corrupt file counts as absent (and is counted again)
    counting.store(ident, "bad", {"error": "boom"})
    assert counting.stored(ident, "bad") is None
    path = counting._entry_path(str(store), ident, "k")
    with open(path, "w") as f:
        f.write("{not json")
    assert counting.stored(ident, "k") is None


def test_identity_names_this_environments_mlx_and_tools():
    pytest.importorskip("mlx.core")
    ident = counting.identity(1)
    assert "mlx==" in ident["mlx"] and len(ident["mlx_build"]) == 64
    assert ident["python"] == sys.version.split()[0] and ident["calls"] == 1
    assert counting.identity_of(sys.executable, 1) == ident  # the same, asked from another process
    assert json.dumps(ident)


def test_two_installs_of_one_wheel_have_one_build():
    """Another environment writes other bin/ scripts (their first line names
    its interpreter) and other bookkeeping: the same build all the same."""
    files = "mlx/core.so,sha256=AAA,10\nmlx_cpu.libs/libopenblas.so,sha256=BBB,20\n"
    one = files + "../../../bin/mlx.launch,sha256=X1,239\nmlx-0.32.4.dist-info/INSTALLER,sha256=I,4\n"
    two = "../../../bin/mlx.launch,sha256=X2,240\n" + files + "mlx-0.32.4.dist-info/REQUESTED,sha256=R,0\n"
    assert counting.installed_files(one) == counting.installed_files(two)
    assert counting.installed_files(files.replace("AAA", "AAB")) != counting.installed_files(one)


def test_only_mlxs_own_distributions_make_the_build():
    assert all(counting.is_mlx_distribution(n) for n in ("mlx", "mlx-cpu", "mlx-metal", "mlx-cuda-13"))
    assert not counting.is_mlx_distribution("mlx-asv") and not counting.is_mlx_distribution("mlx-lm")


def test_store_off_keeps_nothing(monkeypatch):
    monkeypatch.setenv(counting.STORE_ENV, "off")
    counting.store({"a": 1}, "k", {"counts": [1]})
    assert counting.stored({"a": 1}, "k") is None


def test_off_linux_the_case_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(work.sys, "platform", "darwin")
    with pytest.raises(NotImplementedError, match="Linux only"):
        work.ReLU().setup(SMALL, "mlx_cpu")


def test_without_valgrind_the_case_fails_naming_the_fix(store, monkeypatch):
    pytest.importorskip("mlx.core")
    monkeypatch.setattr(counting.shutil, "which", lambda name: None)
    with pytest.raises(counting.CountingError, match="apt install valgrind"):
        work.ReLU().setup(SMALL, "mlx_cpu")


def test_a_case_that_crashes_is_an_error_not_a_count(store, tmp_path, monkeypatch):
    """A counting process that dies: the case fails with the reason (asv
    records it as failed), nothing is kept in the store."""
    pytest.importorskip("mlx.core")

    class Died:
        returncode = -11

        def poll(self):
            return self.returncode

    def launch(python, todo, folder, calls, marks, extra=()):
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, "child.jsonl"), "w").close()
        return Died()

    monkeypatch.setattr(counting, "check_tools", lambda which=None: None)
    monkeypatch.setattr(counting, "marks_library", lambda home=None: "marks.so")
    monkeypatch.setattr(counting, "launch", launch)
    with pytest.raises(RuntimeError, match=r"died in this case \(exit -11\)"):
        work.ReLU().setup(SMALL, "mlx_cpu")
    assert not list(store.rglob("*.json"))
