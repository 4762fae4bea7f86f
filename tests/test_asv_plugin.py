"""tools/asv_plugin.py: a corrupt results file is moved aside, never lost, never fatal."""

import json

from tools import asv_plugin


def make_results(tmp_path):
    folder = tmp_path / "results"
    (folder / "box").mkdir(parents=True)
    good = folder / "box" / "aaaa1111-env.json"
    good.write_text(json.dumps({"results": {}}))
    bad = folder / "box" / "bbbb2222-env.json"
    bad.write_text('{"results": {"ops.Sum')  # cut off, as by a killed run
    (folder / "box" / "machine.json").write_text("{}")
    return folder, good, bad


def test_corrupt_file_is_moved_whole_with_one_line(tmp_path):
    folder, good, bad = make_results(tmp_path)
    content = bad.read_text()
    lines = []
    moved = asv_plugin.quarantine_corrupt_results(str(folder), log=lines.append)
    assert moved == ["box/bbbb2222-env.json"]
    assert not bad.exists() and good.exists()
    assert (folder / "corrupt" / "box" / "bbbb2222-env.json").read_text() == content
    assert len(lines) == 1 and "not valid JSON" in lines[0] and "measures that release again" in lines[0]


def test_second_pass_reads_only_new_files(tmp_path, monkeypatch):
    folder, good, bad = make_results(tmp_path)
    asv_plugin.quarantine_corrupt_results(str(folder), log=lambda m: None)
    opened = []
    real_load = asv_plugin.json.load
    monkeypatch.setattr(asv_plugin.json, "load", lambda f: (opened.append(f.name), real_load(f))[1])
    assert asv_plugin.quarantine_corrupt_results(str(folder), log=lambda m: None) == []
    assert [p for p in opened if p.endswith("env.json")] == []


def test_missing_results_folder_is_fine(tmp_path):
    assert asv_plugin.quarantine_corrupt_results(str(tmp_path / "none")) == []


def test_results_dir_comes_from_the_config():
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert asv_plugin.results_dir(os.path.join(root, "asv.conf.json")) == os.path.join(root, "results")
