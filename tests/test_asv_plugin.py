"""tools/asv_plugin.py: a corrupt results file is moved aside, never lost, never
fatal; a release the ledger does not know ends an asv command in one line."""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from tools import asv_plugin
from mlx_asv.envs import ledger


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
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert asv_plugin.results_dir(os.path.join(root, "asv.conf.json")) == os.path.join(root, "results")


# --------------------------------------------------------------------------
# A release the ledger does not know: one line and status 2, before asv runs
# --------------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTC = dt.timezone.utc
RELEASES = [ledger.Release(v, dt.datetime(2025, 1, i + 1, tzinfo=UTC))
            for i, v in enumerate(["0.30.0", "0.31.2", "0.32.3", "0.32.4"])]


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory):
    repo = str(tmp_path_factory.mktemp("plugin") / "ledger")
    ledger.build(RELEASES, repo=repo, log=lambda m: None)
    return repo


def message(argv, repo, environ=None):
    return asv_plugin.unknown_release_message(argv, repo, environ or {})


@pytest.mark.parametrize("spec, names", [
    ("v0.20.0..v0.24.1", ["v0.20.0", "v0.24.1"]),
    ("v0.32.4^!", ["v0.32.4"]),
    ("v0.32.4~2...v0.32.4^", ["v0.32.4", "v0.32.4"]),
    ("^v0.30.0", ["v0.30.0"]),
    ("0.32.4", ["0.32.4"]),
    ("HEAD~3..HEAD", []),
    ("candidate/foo", []),
    ("HASHFILE:hashes.txt", []),
    ("ALL", []),
    ("3f2a9c1", []),
    ("main", []),
])
def test_release_names_in_a_revision_argument(spec, names):
    assert asv_plugin.release_names(spec) == names


@pytest.mark.parametrize("argv, revisions", [
    (["run", "v9.9.9..v9.9.10", "--dry-run"], ["v9.9.9..v9.9.10"]),
    (["run", "-b", "v1.2.3", "--quick", "HEAD~3..HEAD"], ["HEAD~3..HEAD"]),  # -b's regex is no revision
    (["run", "--skip-existing-successful", "ALL"], ["ALL"]),
    (["run"], []),
    (["continuous", "v0.31.2", "v0.32.4", "-b", "Softmax"], ["v0.31.2", "v0.32.4"]),
    (["compare", "v0.31.2", "v0.32.4"], ["v0.31.2", "v0.32.4"]),
    (["find", "v0.29.0..v0.32.4", "ops.Sigmoid.time_op"], ["v0.29.0..v0.32.4"]),
    (["show", "v0.32.4"], ["v0.32.4"]),
    (["publish"], []),
    (["machine", "--yes"], []),
    (["--verbose", "run", "v0.32.4^!"], ["v0.32.4^!"]),
    (["-m", "pytest", "tests"], []),  # not an asv command line
])
def test_revision_arguments_of_asv_subcommands(argv, revisions):
    assert asv_plugin.revision_args(argv) == revisions


@pytest.mark.parametrize("argv", [
    ["run", "v0.31.2..v0.32.4"],
    ["run", "v0.32.4^!", "-b", "Softmax"],
    ["continuous", "v0.31.2", "v0.32.4"],
    ["compare", "v0.32.3", "v0.32.4"],
    ["find", "v0.30.0..v0.32.4", "ops.Sum.time_op"],
    ["run", "HEAD~3..HEAD"],
    ["run", "candidate/foo^!"],
    ["run", "HASHFILE:hashes.txt"],
    ["run", "deadbeef..HEAD"],  # not release-like: asv judges it
    ["publish"],
])
def test_known_releases_and_other_names_pass(small_ledger, argv):
    assert message(argv, small_ledger) is None
    asv_plugin.check_revisions(argv, small_ledger, {}, log=pytest.fail)  # no exit, nothing printed


def test_unknown_release_is_one_line_with_the_fix(small_ledger):
    lines = []
    with pytest.raises(SystemExit) as exc:
        asv_plugin.check_revisions(["run", "v9.9.9..v9.9.10", "--dry-run"], small_ledger, {}, log=lines.append)
    assert exc.value.code == 2
    assert len(lines) == 1 and "\n" not in lines[0]
    line = lines[0]
    assert "v9.9.9, v9.9.10" in line
    assert "newest release it knows is v0.32.4" in line
    assert "python tools/ledger.py " in line and "python tools/ledger.py --list" in line
    assert "MLX_ASV_OFFLINE" not in line


def test_unknown_release_among_known_ones(small_ledger):
    line = message(["continuous", "v0.31.2", "v0.33.0"], small_ledger)
    assert line.startswith("mlx-asv: no MLX release v0.33.0 in the ledger")
    assert "v0.31.2" not in line


def test_release_without_v_names_the_tag(small_ledger):
    assert "its tags are named like v0.32.4" in message(["run", "0.32.4^!"], small_ledger)


def test_offline_says_to_unset_it(small_ledger):
    line = message(["run", "v9.9.9^!"], small_ledger, {"MLX_ASV_OFFLINE": "1"})
    assert "with MLX_ASV_OFFLINE unset" in line


def test_no_ledger_no_check(tmp_path):
    assert message(["run", "v9.9.9^!"], str(tmp_path / "none")) is None


def test_real_asv_run_of_an_unknown_range_is_one_line():
    """As a new user would: asv itself, in the repository root, loads the
    plugin, which stops it before git rev-list can raise."""
    asv = os.path.join(os.path.dirname(sys.executable), "asv")
    cmd = [asv, "run", "v9.9.9..v9.9.10", "--dry-run"] if os.path.exists(asv) else \
        [sys.executable, "-m", "asv", "run", "v9.9.9..v9.9.10", "--dry-run"]
    env = dict(os.environ, MLX_ASV_OFFLINE="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    lines = [ln for ln in output.splitlines() if ln.strip() and not ln.startswith("ledger: ")]
    assert len(lines) == 1, output
    assert "no MLX release v9.9.9, v9.9.10 in the ledger" in lines[0]
    assert "python tools/ledger.py --list" in lines[0]
