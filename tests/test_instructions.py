"""Instruction counts (tools/instructions.py, benchmarks/lib/count_child.py,
benchmarks/lib/callgrind.py, verdicts.decide_counts): the dump reader on a dump
written by hand with known answers, the counts' verdicts on known counts,
the A/A and injected counts, the tool's one-line errors, and the counting
itself under valgrind on two real ops.py cases whose counts must scale with
their sizes."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from benchmarks.lib import callgrind, counting
from mlx_asv.decide import verdicts as vd
from mlx_asv.decide import instructions

# A dump in callgrind's format: compressed names, a call (its inclusive cost
# line must not count as the caller's own), two libraries, totals that wrapped
# (callgrind 3.19 with threads), a second fn block of a function seen before.
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  python child.py
part: 2

desc: I1 cache:
desc: Trigger: Client Request: ops.ReLU.time_op('dim=2', 'mlx_cpu')#1

positions: line
events: Ir
summary: 18446744073707279343

ob=(1) /usr/lib/libmlx.so
fl=(1) ???
fn=(1) mlx::core::unary_op<Relu>
0 700
+3 300
cfn=(2) memcpy
calls=2 0
0 5000
fn=(2)
0 40
ob=(2) /lib/x86_64-linux-gnu/libc.so.6
fn=(3) memset
0 60
ob=(1)
fn=(1)
0 5
ob=(3) ???
fn=(4) 0x000000000adab940
0 7
fn=(5) 0x000000000adc0df0
0 3

totals: 18446744073707279343
"""


def test_a_dump_read_by_hand():
    d = callgrind.parse(DUMP)
    assert d["name"] == "ops.ReLU.time_op('dim=2', 'mlx_cpu')#1"
    assert d["functions"] == {
        "mlx::core::unary_op<Relu> [libmlx.so]": 1005,  # 700 + 300 + 5, not the call's 5000
        "memcpy [libmlx.so]": 40,
        "memset [libc.so.6]": 60,
        "(code without a symbol) [???]": 10,  # two addresses, one name: they move between releases
    }
    assert d["total"] == 1115  # the functions' own, not the wrapped totals line


def test_a_dump_cut_short_is_an_error():
    with pytest.raises(callgrind.CallgrindError, match="cut short"):
        callgrind.parse(DUMP.split("totals:")[0])


def test_function_changes_largest_first():
    base = {"a": 100, "b": 1000, "c": 5}
    cand = {"a": 100, "b": 400, "c": 50, "d": 700}
    assert callgrind.function_changes(base, cand, top=2) == [("d", 0, 700), ("b", 1000, 400)]
    assert callgrind.function_changes(base, base) == []


@pytest.mark.parametrize("cand, verdict", [
    ([1000, 1000], vd.SAME),
    ([1010, 1012], vd.SAME),            # +1.1%: under the 2% threshold
    ([1100, 1100], vd.SLOWER),          # +10%
    ([1021, 1025], vd.SLOWER),          # just past 2%, and steady
    ([900, 901], vd.FASTER),
    ([1000, 1300], vd.UNDECIDED),       # the candidate's counts vary by 30%
    ([1015, 1025], vd.UNDECIDED),       # straddles the threshold
])
def test_count_verdicts(cand, verdict):
    v = vd.decide_counts("k", [1000, 1000], cand, min_effect=0.02)
    assert v.verdict == verdict
    assert v.lo <= v.ratio <= v.hi


@pytest.mark.parametrize("base, cand, verdict", [
    (2_000_000, 2_019_000, vd.SAME),      # +0.95% of a call of 1 M or more: within 1%
    (2_000_000, 2_021_000, vd.SLOWER),    # +1.05%
    (2_000_000, 1_979_000, vd.FASTER),
    (500_000, 520_000, vd.SAME),          # +4% of a small call: within 5%
    (500_000, 530_000, vd.SLOWER),        # +6%
])
def test_work_threshold_follows_the_calls_size(base, cand, verdict):
    assert vd.decide_counts("k", [base], [cand]).verdict == verdict


@pytest.mark.parametrize("backend,cand,verdict", [
    ("ours_mlx_cpu", 20_700_000, vd.SAME),       # +3.5%: inside what its A/A moved (3.6%)
    ("ours_mlx_cpu", 22_000_000, vd.SLOWER),     # +10%: past its 8%
    ("mlx_linalg_cpu", 20_700_000, vd.SLOWER),   # the same +3.5% on a steady implementation
])
def test_an_unsteady_implementation_has_its_own_work_threshold(backend, cand, verdict):
    key = f"metal_kernels.Cholesky.time_cholesky('dim=100x32x32', '{backend}')"
    assert vd.decide_counts(key, [20_000_000], [cand]).verdict == verdict
    assert vd.work_threshold(20_000_000, key) == (0.08 if backend == "ours_mlx_cpu" else 0.01)


def test_the_gate_and_the_main_job_name_work_verdicts_alike():
    from mlx_asv.commands import mainjob
    from mlx_asv.decide import gate

    words = {v: vd.work_word(v) for v in (vd.SLOWER, vd.FASTER, vd.SAME, vd.UNDECIDED, "failed")}
    assert words == {vd.SLOWER: "more", vd.FASTER: "fewer", vd.SAME: "same", vd.UNDECIDED: "undecided",
                     "failed": "failed"}
    row = {"verdict": vd.FASTER, "ratio": 0.9, "note": ""}
    assert gate.work_note(row).endswith("fewer")
    assert not hasattr(gate, "WORK_WORDS") and not hasattr(mainjob, "WORK_WORDS")


def test_count_verdict_without_counts_is_undecided():
    v = vd.decide_counts("k", [], [1000])
    assert v.verdict == vd.UNDECIDED and v.note == "no counts"


def test_varying_counts_say_so():
    v = vd.decide_counts("k", [1000, 1000], [1000, 1300])
    assert "vary by 30%" in v.note


def _side(counts, functions=None):
    return {"counts": list(counts), "functions": functions or {"f": counts[0]}}


def test_power_on_steady_and_on_varying_counts():
    steady = {f"k{i}": _side([1000 + i, 1000 + i]) for i in range(30)}
    run = {"a": steady, "b": {k: _side(v["counts"]) for k, v in steady.items()}}
    result = instructions.power(run, "a", "b", min_effect=0.02)
    assert result["aa"][vd.SAME] == 30 and not result["aa_alarms"]
    for factor in ("1.05", "1.1", "1.2"):
        found, injected, faster = result[factor]
        assert found == injected == 50 and faster == 0  # 10 cases a seed, 5 seeds
    # counts that vary by 4% from call to call: a 5% change is not resolved, 20% is
    varying = {f"k{i}": _side([1000, 1040]) for i in range(30)}
    result = instructions.power({"a": varying, "b": varying}, "a", "b", min_effect=0.02)
    assert result["1.05"][0] < result["1.05"][1]
    assert result["1.2"][0] == result["1.2"][1]
    assert not result["aa_alarms"]


def test_compare_lists_functions_of_a_changed_case_and_keeps_failures():
    base = {"x": _side([1000, 1000], {"f": 900, "g": 100}), "y": {"error": "RuntimeError: boom"},
            "z": {"skip": "not in this release"}}
    cand = {"x": _side([1500, 1500], {"f": 1400, "g": 100}), "y": _side([5, 5]), "z": {"skip": "not in this release"}}
    rows = {v.key: (v, fns) for v, fns in instructions.compare(base, cand)}
    assert rows["x"][0].verdict == vd.SLOWER and rows["x"][1] == [("f", 900, 1400)]
    assert rows["y"][0].verdict == "failed" and "boom" in rows["y"][0].note
    assert rows["z"][0].verdict == "skipped"
    text = instructions.markdown({"pairs": [instructions.pair_report("A", "B", base, cand, 2, 1, vd.MIN_EFFECT)]})
    assert "slower (more instructions): 1" in text and "|   f | 900 | 1.4k" in text and "boom" in text


def test_cases_are_ops_cases_on_mlx_cpu_only():
    got = instructions.cases(r"^ops\.ReLU\.")
    assert [c[0] for c in got] == [
        "ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu')", "ops.ReLU.time_op('dim=64x128x1024', 'mlx_cpu')"]
    # the catalogue's 91 cases and Compile's 4 (mx.compile itself), on MLX: torch is pinned, never counted
    assert len(instructions.cases()) == 91 + 4
    assert [c[0] for c in instructions.cases(r"^ops\.Compile\.")][0].startswith("ops.Compile.time_compile(")


def test_read_process(tmp_path):
    (tmp_path / "child.jsonl").write_text(
        json.dumps({"key": "a", "done": 2}) + "\nwarning: stray\n" + json.dumps({"key": "b", "error": "E: x"}) + "\n")
    for n, (name, cost) in enumerate([("a#0", 10), ("a#1", 11)], start=1):
        (tmp_path / f"callgrind.77.{n}").write_text(
            DUMP.replace("ops.ReLU.time_op('dim=2', 'mlx_cpu')#1", name).replace("0 700", f"0 {cost}"))
    got = instructions.read_process(str(tmp_path))
    assert got["a"]["counts"] == [10 + 415, 11 + 415]
    assert got["b"] == {"error": "E: x"}


def test_a_second_call_counts_only_where_the_child_took_it(tmp_path):
    """count_child dumps every case's second call as <key>#2nd; read_process
    counts it (first, with its functions) only where the child's line says
    second_counted, else the dumps from the third call on."""
    rows = [{"key": "big", "done": 2, "second_counted": True}, {"key": "small", "done": 1, "second_counted": False}]
    (tmp_path / "child.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for n, (name, cost) in enumerate([("big#2nd", 100), ("big#1", 101), ("small#2nd", 7), ("small#0", 9)], start=1):
        (tmp_path / f"callgrind.77.{n}").write_text(
            DUMP.replace("ops.ReLU.time_op('dim=2', 'mlx_cpu')#1", name).replace("0 700", f"0 {cost}"))
    got = instructions.read_process(str(tmp_path))
    assert got["big"]["counts"] == [100 + 415, 101 + 415]
    assert got["big"]["functions"]["mlx::core::unary_op<Relu> [libmlx.so]"] == 100 + 305  # the #2nd dump's
    assert got["small"]["counts"] == [9 + 415]
    # a case that failed after a dump: its error, not a count
    with open(tmp_path / "child.jsonl", "a") as f:
        f.write(json.dumps({"key": "broke", "error": "RuntimeError: x"}) + "\n")
    (tmp_path / "callgrind.77.9").write_text(DUMP.replace("ops.ReLU.time_op('dim=2', 'mlx_cpu')#1", "broke#0"))
    assert instructions.read_process(str(tmp_path))["broke"] == {"error": "RuntimeError: x"}


def test_the_child_reads_a_dumps_totals_and_distrusts_a_wrapped_one(tmp_path):
    from benchmarks.lib import count_child

    (tmp_path / "callgrind.5.1").write_text(DUMP.replace("totals: 18446744073707279343", "totals: 123456789"))
    (tmp_path / "callgrind.5.2").write_text(DUMP)  # totals wrapped below zero
    (tmp_path / "callgrind.5.3").write_text(DUMP.split("totals:")[0])  # cut short
    assert count_child.dump_total(str(tmp_path), 5, 1) == 123456789
    assert count_child.dump_total(str(tmp_path), 5, 2) is None
    assert count_child.dump_total(str(tmp_path), 5, 3) is None
    assert count_child.dump_total(str(tmp_path), 5, 4) is None  # no such dump


def test_bad_input_is_one_line(capsys, monkeypatch):
    assert instructions.main(["v0.32.4"]) == 2
    assert "two ledger names" in capsys.readouterr().err
    monkeypatch.setattr(instructions, "check_tools", lambda **kw: None)
    monkeypatch.setattr("mlx_asv.envs.ledger.ensure", lambda log=None: [])
    monkeypatch.setattr("mlx_asv.measure.protocol.resolve", lambda name: "0" * 40)
    assert instructions.main(["v0.32.3", "v0.32.4", "--backends", "mlx_gpu"]) == 2
    assert "CPU instructions only" in capsys.readouterr().err
    assert instructions.main(["v0.32.3", "v0.32.4", "--backends", "mlx_cpu,torch_cpu"]) == 2
    assert "torch is pinned" in capsys.readouterr().err
    assert instructions.main(["v0.32.3", "v0.32.4", "-b", "NoSuchFamily"]) == 2
    assert "no counted case" in capsys.readouterr().err
    assert instructions.main(["--power", "/nonexistent"]) == 2


def test_missing_valgrind_names_the_fix():
    with pytest.raises(instructions.InstructionsError, match="apt install valgrind"):
        instructions.check_tools(which=lambda name: None)


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("cc")
                    or not os.path.exists("/usr/include/valgrind/callgrind.h"),
                    reason="needs valgrind, its headers and a C compiler")
def test_counts_under_valgrind_scale_with_the_case(tmp_path):
    """The child under callgrind, in this environment (its MLX and torch): the
    counts of one call are steady from call to call, and ReLU on 8 Mi
    elements executes about 4 times the instructions of ReLU on 2 Mi, on both
    frameworks: the counts are the call's work, nothing fixed."""
    pytest.importorskip("mlx.core")
    pytest.importorskip("torch")
    todo = instructions.cases(r"^ops\.ReLU\.", backends=("mlx_cpu", "torch_cpu"))  # the child counts either
    folder = tmp_path / "p0"
    proc = instructions.launch(sys.executable, todo, str(folder), 2, instructions.marks_library(str(tmp_path)),
                               annotate=True)
    assert proc.wait(timeout=600) == 0, (folder / "valgrind.log").read_text()[-2000:]
    got = instructions.read_process(str(folder))
    for key, row in got.items():
        # --annotate: the hottest instructions were read at the addresses objdump
        # knows as instructions of the library (a misread address has no text)
        hot = row["hot"][0]
        assert hot["lines"] and all(text for _, _, text in hot["lines"]), (key, hot)
        assert os.path.isfile(hot["object"]) and sum(ir for _, ir, _ in hot["lines"]) <= hot["own"]
    for _, _, _, be in todo:
        small = got[f"ops.ReLU.time_op('dim=128x16x1024', '{be}')"]["counts"]
        large = got[f"ops.ReLU.time_op('dim=64x128x1024', '{be}')"]["counts"]
        assert len(small) == len(large) == 2
        assert max(small) / min(small) < 1.01 and max(large) / min(large) < 1.01
        assert 3.6 < (sum(large) / 2) / (sum(small) / 2) < 4.4, (be, small, large)
        # at least one instruction an element: the call's work was counted
        assert min(large) > 64 * 128 * 1024 / 8


@pytest.mark.skipif(not shutil.which("valgrind") or not shutil.which("cc")
                    or not os.path.exists("/usr/include/valgrind/callgrind.h"),
                    reason="needs valgrind, its headers and a C compiler")
def test_a_large_call_is_counted_on_its_second_call_a_small_one_on_its_third(tmp_path):
    """Under callgrind: Argmax 64x1024x128 axis=0 (116 M instructions) is
    counted from its second call on, ReLU 128x16x1024 (5.8 M) from its third;
    either way the counted calls agree (the second carries no one-time work
    that matters at that size)."""
    pytest.importorskip("mlx.core")
    todo = instructions.cases(r"^ops\.(Argmax\..*64x1024x128 axis=0|ReLU\..*128x16x1024)")
    assert len(todo) == 2
    folder = tmp_path / "p0"
    proc = instructions.launch(sys.executable, todo, str(folder), 2, instructions.marks_library(str(tmp_path)))
    assert proc.wait(timeout=600) == 0, (folder / "valgrind.log").read_text()[-2000:]
    lines = {r["key"]: r for r in map(json.loads, (folder / "child.jsonl").read_text().splitlines())
             if r.get("done")}
    argmax, relu = (next(k for k, *_ in todo if name in k) for name in ("Argmax", "ReLU"))
    assert lines[argmax]["second_counted"] and lines[argmax]["second"] >= 100_000_000
    assert not lines[relu]["second_counted"] and lines[relu]["second"] < 100_000_000
    got = instructions.read_process(str(folder))
    for key in (argmax, relu):
        counts = got[key]["counts"]
        assert len(counts) == 2 and max(counts) / min(counts) < 1.001, (key, counts)
    # the second call's count is the first counted one
    assert abs(got[argmax]["counts"][0] / lines[argmax]["second"] - 1) < 0.001


def test_long_cpp_names_keep_their_templates():
    name = ("mlx::core::Softmax::eval_cpu(std::vector<mlx::core::array, std::allocator<mlx::core::array> > "
            "const&, mlx::core::array&) [libmlx.so]")
    assert instructions.short_name(name) == "mlx::core::Softmax::eval_cpu(...) [libmlx.so]"
    short = "mlx::core::simd::exp<float, 1>(mlx::core::simd::Simd<float, 1>) [libmlx.so]"
    assert instructions.short_name(short) == short
    assert len(instructions.short_name("f<" + "x" * 300 + ">()")) == 110


def test_show_decides_a_finished_run_again(tmp_path, capsys):
    run = {"names": ["A", "B"], "commits": ["a", "b"], "calls": 2, "processes": 1,
           "counts": {"A": {"k": _side([10**6, 10**6])}, "B": {"k": _side([1030000, 1030000])}}}
    (tmp_path / "counts.json").write_text(json.dumps(run))
    assert instructions.main(["--show", str(tmp_path)]) == 1  # +3% of 1 M: past the 1% threshold
    assert "slower (more instructions): 1" in capsys.readouterr().out
    assert instructions.main(["--show", str(tmp_path), "--min-effect", "0.05"]) == 0
    assert "### same: 1" in capsys.readouterr().out
    assert instructions.main(["--power", str(tmp_path)]) == 0
    assert "A/A false alarms: 1 of 1" in capsys.readouterr().out
    # two runs of the same releases: each release against itself, 2 comparisons, no alarm
    again = tmp_path / "again"
    again.mkdir()
    (again / "counts.json").write_text(json.dumps(run))
    assert instructions.main(["--power", str(tmp_path), str(again)]) == 0
    out = capsys.readouterr().out
    assert "A/A false alarms: 0 of 2" in out and "injected +2%: called slower" in out


def test_a_release_that_does_not_install_is_left_out(tmp_path, monkeypatch, capsys):
    """As asv does: a series goes on without the release that did not
    install, compares its neighbours, and says why it is missing."""
    monkeypatch.setattr(instructions, "check_tools", lambda **kw: None)
    monkeypatch.setattr("mlx_asv.envs.ledger.ensure", lambda log=None: [])
    monkeypatch.setattr("mlx_asv.measure.protocol.resolve", lambda name: name.ljust(40, "0"))

    def side_env(commit, log=print):
        if commit.startswith("v2"):
            raise instructions.InstructionsError("MLX 2: no wheel for linux x86_64 cp311")
        return "python-" + commit[:2]

    counts = {"v1": 1000, "v3": 1000, "v4": 1500}

    def measure(sides, todo, folder, **kw):
        return {n: {todo[0][0]: _side([counts[n], counts[n]])} for n in sides}

    monkeypatch.setattr(instructions, "side_env", side_env)
    monkeypatch.setattr(instructions, "measure", measure)
    code = instructions.main(["v1", "v2", "v3", "v4", "-b", r"^ops\.ReLU\.time_op\('dim=128x16x1024', 'mlx_cpu'\)$",
                              "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 1  # v3 -> v4: 1.5x the instructions
    assert "v2 left out: MLX 2: no wheel" in out.err
    assert "## v1 -> v3" in out.out and "## v3 -> v4" in out.out and "v2 ->" not in out.out
    assert "| ops.ReLU.time_op('dim=128x16x1024', 'mlx_cpu') | 1k | 1k | 1.5k |" in out.out
    assert json.loads((tmp_path / "counts.json").read_text())["left_out"] == {"v2": "MLX 2: no wheel for linux x86_64 cp311"}


def test_hint_names_slower_and_undecided_mlx_cpu_cases_slower_first_never_torch():
    k = lambda f, be: f"ops.{f}.time_op('x', '{be}')"  # noqa: E731
    verdicts = [(k("A", "mlx_cpu"), vd.UNDECIDED, 1.05), (k("B", "mlx_cpu"), vd.SLOWER, 1.2),
                (k("C", "mlx_gpu"), vd.SLOWER, 2.0), (k("D", "torch_cpu"), vd.SAME, 1.0),
                (k("E", "torch_cpu"), vd.UNDECIDED, 0.7), ("models.Inference.time_forward('m', 'mlx_cpu')", vd.SLOWER, 3.0)]
    text = instructions.hint("v1", "v2", verdicts)
    assert text.startswith("Whether the work of 2 of these changed")
    from mlx_asv.measure import protocol

    assert protocol.case_regex([k("B", "mlx_cpu"), k("A", "mlx_cpu")]) in text
    assert "torch_cpu" not in text  # pinned: the same code on both sides, the time verdicts' control
    assert instructions.hint("v1", "v2", [(k("D", "torch_cpu"), vd.SAME, 1.0)]) == ""
    assert instructions.hint("v1", "v2", [(k("E", "torch_cpu"), vd.UNDECIDED, 0.7)]) == ""


class _Exited:
    def __init__(self, code):
        self.returncode = code

    def poll(self):
        return self.returncode

    def kill(self):
        pass

    def wait(self):
        return self.returncode


def test_a_case_that_crashes_loses_only_itself(tmp_path, monkeypatch):
    """A process that dies in a case (a segfault: exit -11): that case is
    failed, with the reason, and a new process counts the cases after it."""
    todo = [(f"k{i}", "F", "x", "mlx_cpu") for i in range(4)]
    started = []

    def start(python, cases_left, folder, calls, marks):
        os.makedirs(folder)
        started.append([c[0] for c in cases_left])
        lines = []
        for n, (key, *_rest) in enumerate(cases_left, start=1):
            if key == "k1":
                break  # dies here
            (tmp_path / folder / f"callgrind.9.{n}").write_text(DUMP.replace(
                "ops.ReLU.time_op('dim=2', 'mlx_cpu')#1", f"{key}#0"))
            lines.append(json.dumps({"key": key, "done": 1}))
        (tmp_path / folder / "child.jsonl").write_text("\n".join(lines) + "\n")
        return _Exited(-11 if "k1" in [c[0] for c in cases_left] else 0)

    monkeypatch.setattr(instructions, "marks_library", lambda: "marks.so")
    monkeypatch.setattr(instructions.time, "sleep", lambda s: None)
    got = instructions.measure({"A": "python"}, todo, str(tmp_path), calls=1, start=start, log=lambda m: None)["A"]
    assert started == [["k0", "k1", "k2", "k3"], ["k2", "k3"]]
    assert got["k0"]["counts"] == got["k2"]["counts"] == got["k3"]["counts"] == [1115]
    assert "died in this case (exit -11)" in got["k1"]["error"]
    verdicts = {v.key: v.verdict for v, _ in instructions.compare(got, got)}
    assert verdicts["k1"] == "failed" and verdicts["k0"] == vd.SAME


class _Hangs(_Exited):
    def __init__(self):
        super().__init__(None)

    def kill(self):
        self.returncode = -9


def test_a_case_that_hangs_loses_only_itself(tmp_path, monkeypatch):
    todo = [(f"k{i}", "F", "x", "mlx_cpu") for i in range(3)]

    def start(python, cases_left, folder, calls, marks):
        os.makedirs(folder)
        (tmp_path / folder / "child.jsonl").write_text("")
        if cases_left[0][0] == "k0":
            return _Hangs()  # hangs in its first case
        for n, (key, *_rest) in enumerate(cases_left, start=1):
            (tmp_path / folder / f"callgrind.9.{n}").write_text(DUMP.replace(
                "ops.ReLU.time_op('dim=2', 'mlx_cpu')#1", f"{key}#0"))
        return _Exited(0)

    monkeypatch.setattr(instructions, "marks_library", lambda: "marks.so")
    monkeypatch.setattr(instructions.time, "sleep", lambda s: None)
    got = instructions.measure({"A": "python"}, todo, str(tmp_path), calls=1, start=start, timeout_s=1e-9,
                               log=lambda m: None)["A"]
    assert "ran past" in got["k0"]["error"]
    assert got["k1"]["counts"] == got["k2"]["counts"] == [1115]


def test_simulated_cache_events_are_summed_and_shown(tmp_path):
    dump = DUMP.replace("events: Ir", "events: Ir D1mr DLmr").replace("0 700", "0 700 9 4").replace(
        "0 5000", "0 5000 80 70")  # the call's inclusive cost line still does not count
    d = callgrind.parse(dump)
    assert d["events"] == {"Ir": 1115, "D1mr": 9, "DLmr": 4}
    assert d["functions"]["mlx::core::unary_op<Relu> [libmlx.so]"] == 1005
    side = lambda n, miss: {"k": dict(_side([n, n]), events={"Ir": n, "D1mr": miss, "DLmr": 2 * miss})}  # noqa: E731
    text = instructions.markdown({"pairs": [instructions.pair_report("A", "B", side(1000, 5000), side(1000, 9000),
                                                                      1, 1, vd.MIN_EFFECT)]})
    assert "first-level read misses 5k -> 9k" in text and "last-level read misses 10k -> 18k" in text


def test_simulated_branch_events_are_shown_on_their_own_line(tmp_path):
    side = lambda n, bcm: {"k": dict(_side([n, n]), events={"Ir": n, "Bc": 100, "Bcm": bcm, "Bi": 4, "Bim": 1})}  # noqa: E731
    text = instructions.markdown({"pairs": [instructions.pair_report("A", "B", side(1000, 3000), side(1000, 7000),
                                                                      1, 1, vd.MIN_EFFECT)]})
    assert "simulated branch prediction, a call (valgrind): conditional branches 100 -> 100, mispredicted 3k -> 7k" in text
    assert "simulated caches" not in text  # no cache events were simulated


def test_branch_sim_asks_callgrind_for_its_branch_predictor(tmp_path, monkeypatch):
    seen = {}
    counting.no_aslr_prefix()  # asked once, for real, before Popen is replaced
    monkeypatch.setattr(counting.subprocess, "Popen", lambda cmd, **kw: seen.setdefault("cmd", cmd))
    instructions.launch("python", [("ReLU", "dim=2", "mlx_cpu")], str(tmp_path), 1, "marks.so", branch_sim=True)
    assert "--branch-sim=yes" in seen["cmd"] and "--cache-sim=yes" not in seen["cmd"]


INSTR_DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
desc: Trigger: Client Request: k#0
positions: instr
events: Ir
ob=(1) /opt/lib/libmlx.so
fn=(1) mlx::core::loop
0x1000 10
+4 20
*  5
cfn=(2) step
calls=1 0x2000
+3 999
-7 1
fn=(2)
0x2000 7
totals: 43
"""


def test_a_dump_by_instruction_gives_each_instruction_its_address():
    d = callgrind.parse(INSTR_DUMP)
    # +4 from 0x1000, * the same, the call's line (+3: 0x1007) moves the next (-7: 0x1000) but costs nothing here
    assert d["instructions"]["mlx::core::loop [libmlx.so]"] == {0x1000: 11, 0x1004: 25}
    assert d["instructions"]["step [libmlx.so]"] == {0x2000: 7}
    assert d["functions"]["mlx::core::loop [libmlx.so]"] == 36 and d["total"] == 43
    assert d["objects"]["step [libmlx.so]"] == "/opt/lib/libmlx.so"
    assert callgrind.parse(DUMP)["instructions"] == {}  # by line: no addresses


def test_annotate_shows_each_sides_hottest_code(tmp_path, monkeypatch):
    lib = tmp_path / "libmlx.so"
    lib.write_bytes(b"")
    dump = callgrind.parse(INSTR_DUMP.replace("/opt/lib/libmlx.so", str(lib)))
    seen = []

    class Proc:
        stdout = ("\n  1000:\tmov    0x8(%rsp),%rax\n  1004:\tjne    1000 <void mlx::core::scatter<float, int, "
                  "mlx::core::Sum>(mlx::core::array const&, mlx::core::array&, std::vector<int> const&)+0x10>\n")

    def run(cmd, **kw):
        seen.append(cmd)
        return Proc()

    hot = instructions.hot_code(dump, run=run)
    assert seen[0][0] == "objdump" and "--start-address=0x1000" in seen[0] and str(lib) in seen[0]
    loop = hot[0]
    assert loop["function"] == "mlx::core::loop [libmlx.so]" and loop["own"] == 36
    assert loop["lines"][0] == [0x1000, 11, "mov 0x8(%rsp),%rax"]
    assert loop["lines"][1][2].startswith("jne 1000 <void mlx::core::scatter<float, int, mlx::core::Sum>(...)")
    side = {"k": dict(_side([36, 36]), hot=hot)}
    text = instructions.markdown({"pairs": [instructions.pair_report("A", "B", side, side, 1, 1, vd.MIN_EFFECT)]})
    assert "### Hottest code of one call: k" in text and "A: `mlx::core::loop [libmlx.so]`" in text
    assert "mov 0x8(%rsp),%rax" in text
    lib.unlink()  # a side's environment removed since: the addresses stay, the text says why
    gone = instructions.hot_code(dump, run=run)
    assert gone[0]["lines"][0][2] == "" and len(seen) == 2


def test_annotate_without_objdump_names_the_fix():
    with pytest.raises(instructions.InstructionsError, match="apt install binutils"):
        instructions.check_tools(which=lambda name: None if name == "objdump" else "/usr/bin/" + name, annotate=True)
