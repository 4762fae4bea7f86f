"""mlx_asv/gpu/merge_results.py: rows added to a reference results file leave every earlier row byte-identical."""

import glob
import json
import os
import shutil

from asv import util

from mlx_asv.gpu import merge_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = sorted(glob.glob(os.path.join(ROOT, "results-reference", "h200", "a78e78eb-*.json")))[0]


def test_adding_device_rows_keeps_the_reference_byte_identical(tmp_path):
    ref = tmp_path / "ref.json"
    shutil.copy(REF, ref)
    data = json.loads(ref.read_text())
    new = dict(data, results={
        "device.Sort.track_device_time": [[2.2e-4], [["'dim=64x128x1024 axis=2'"], ["'mlx_gpu'"]]] + [None] * 11,
        "ops.Sort.time_op": [[1.0]] + [None] * 12,  # held already: never replaced
    })
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert merge_results.main([str(ref), str(tmp_path / "new.json"), "--bench", r"^(device|ops)\."]) == 0
    merged = json.loads(ref.read_text())
    assert merged["results"]["device.Sort.track_device_time"][0] == [2.2e-4]
    assert merged["results"]["ops.Sort.time_op"] == data["results"]["ops.Sort.time_op"]
    del merged["results"]["device.Sort.track_device_time"]
    util.write_json(str(tmp_path / "back.json"), merged, api_version=data["version"], compact=True)
    with open(REF, "rb") as f:
        assert (tmp_path / "back.json").read_bytes() == f.read()


def test_files_of_another_commit_are_refused_with_one_line(tmp_path, capsys):
    ref = tmp_path / "ref.json"
    shutil.copy(REF, ref)
    new = dict(json.loads(ref.read_text()), commit_hash="0" * 40)
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert merge_results.main([str(ref), str(tmp_path / "new.json"), "--bench", "."]) == 2
    assert "different commits" in capsys.readouterr().err
    with open(REF, "rb") as f:
        assert ref.read_bytes() == f.read()
