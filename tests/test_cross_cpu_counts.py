"""studies/cross_cpu_counts.py: reading run.sh's folders and comparing two machines' counts."""

import json

from studies import cross_cpu_counts as xc

KEY = "ops.F.time_op('x', 'mlx_cpu')"


def dump(key, mlx, libc, libname="memcpy"):
    return f"""# callgrind format
version: 1
creator: callgrind-3.19.0
desc: Trigger: Client Request: {key}#0
positions: line
events: Ir
ob=(1) /tmp/xcpu/site/mlx/lib/libmlx.so
fn=(1) mlx::core::loop
0 {mlx}
ob=(2) /tmp/xcpu/lib/libc.so.6
fn=(2) {libname}
0 {libc}
totals: {mlx + libc}
"""


def folder(tmp_path, name, reps):
    for rep, (mlx, libc, libname) in enumerate(reps, 1):
        sub = tmp_path / name / f"rep{rep}-p0"
        sub.mkdir(parents=True)
        (sub / "callgrind.1.1").write_text(dump(KEY, mlx, libc, libname))
        (sub / "child.jsonl").write_text(json.dumps({"key": KEY, "done": 1}) + "\n"
                                         + json.dumps({"key": "ops.G.time_op('y', 'mlx_cpu')", "error": "boom\nmore"}) + "\n")
    return str(tmp_path / name)


def test_library_of_a_function_name():
    assert xc.library("mlx::core::loop [/tmp/xcpu/site/mlx/lib/libmlx.so]") == "libmlx.so"
    assert xc.library("no library") == "?"


def test_compare_gives_totals_libmlx_and_the_largest_difference(tmp_path):
    here = folder(tmp_path, "here", [(1_000_000, 1000, "__memcpy_avx_unaligned_erms"), (1_000_000, 1010, "__memcpy_avx_unaligned_erms")])
    there = folder(tmp_path, "there", [(1_000_100, 1000, "(code without a symbol)"), (1_000_100, 1000, "(code without a symbol)")])
    runs = xc.read_runs(here)
    assert runs[KEY]["rep1"]["total"] == 1_001_000 and runs[KEY]["rep2"]["total"] == 1_001_010
    out = xc.compare(here, there)
    row = next(line for line in out.splitlines() if line.startswith(f"| {KEY}"))
    assert "1,001,000, 1,001,010 | 1,001,100, 1,001,100" in row
    assert "1,000,000, 1,000,000 | 1,000,100, 1,000,100 | 0.0100% |" in row  # libmlx's own
    assert "| here: boom; there: boom ||" in out  # an error's first line only
    assert "over the 1 cases of 1 M instructions or more: 0.0100%" in out
    assert "libc.so.6 1,000 / 1,000" not in out and "(code without a symbol) [libc.so]: 0 / 1,000" in out
