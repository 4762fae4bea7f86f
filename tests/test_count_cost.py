"""studies/count_cost.py: a case of another family is built and called through the very
callable asv times, natively (the valgrind path is the counting path's, tested in
test_instructions.py), and an unknown case is one clear line."""

import json

import pytest

from studies import count_cost


def test_a_fused_case_runs_natively_and_reports_its_phases(capsys):
    pytest.importorskip("mlx.core")
    assert count_cost.main(["--native", "fused_ops:RMSNorm:dim=1x4096 fwd"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "error" not in row, row
    assert row["case"] == "fused_ops:RMSNorm:dim=1x4096 fwd"
    assert all(row[k] >= 0 for k in ("build", "second", "counted", "process"))
    assert "instructions" not in row  # nothing counted without valgrind


def test_an_unknown_case_names_the_forms():
    with pytest.raises(SystemExit, match="models:..., fused_ops:..., metal_kernels:..."):
        count_cost.callable_of("ops:ReLU:x")
