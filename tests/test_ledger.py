"""The release ledger: order, tags, dates, idempotence, offline build, appending."""

import datetime as dt
import os
import subprocess

import pytest

from mlx_asv.envs import ledger

TABLE = ledger.read_table()


def git(repo, *args):
    return subprocess.run(
        ["git", "--git-dir", repo, *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path):
    return str(tmp_path / "ledger")


def test_table_is_in_version_order_and_dated():
    versions = [r.version for r in TABLE]
    assert versions == sorted(versions, key=ledger.version_key)
    assert len(versions) == len(set(versions))
    # the table covers what the suite is documented against
    for v in ("0.2.0", "0.21.1", "0.25.2", "0.32.1", "0.32.4"):
        assert v in versions
    assert all(r.date.tzinfo is not None for r in TABLE)


def test_offline_build_one_commit_per_release_in_order(repo):
    built = ledger.build(TABLE, repo=repo, log=lambda m: None)
    log = git(repo, "log", "--first-parent", "--reverse", "--format=%H %at %s", "main").splitlines()
    assert len(log) == len(TABLE)
    for line, rel, (rel2, commit) in zip(log, TABLE, built):
        sha, stamp, subject = line.split(" ", 2)
        assert rel2 is rel and sha == commit
        assert int(stamp) == int(rel.date.timestamp())
        assert subject == f"MLX {rel.tag}"
        assert git(repo, "show", f"{sha}:MLX_VERSION").strip() == rel.version
        assert git(repo, "rev-list", "-n1", rel.tag).strip() == sha


def test_build_twice_changes_nothing(repo):
    first = ledger.build(TABLE, repo=repo, log=lambda m: None)
    refs = git(repo, "show-ref")
    messages = []
    second = ledger.build(TABLE, repo=repo, log=messages.append)
    assert [c for _, c in first] == [c for _, c in second]
    assert git(repo, "show-ref") == refs
    assert messages == []


def test_same_hashes_on_every_machine(tmp_path):
    a = ledger.build(TABLE, repo=str(tmp_path / "a"), log=lambda m: None)
    b = ledger.build(TABLE, repo=str(tmp_path / "b"), log=lambda m: None)
    assert a == b


def test_new_release_appends_one_commit_and_keeps_hashes(repo):
    old = ledger.build(TABLE[:-1], repo=repo, log=lambda m: None)
    new = ledger.build(TABLE, repo=repo, log=lambda m: None)
    assert new[:-1] == old
    assert git(repo, "rev-parse", "main~1").strip() == old[-1][1]
    assert git(repo, "rev-list", "--count", "main").strip() == str(len(TABLE))


def test_changed_history_is_refused_with_a_fix(repo):
    ledger.build(TABLE, repo=repo, log=lambda m: None)
    changed = list(TABLE)
    changed[5] = ledger.Release(changed[5].version, changed[5].date + dt.timedelta(days=1))
    with pytest.raises(ledger.LedgerError, match="move it aside"):
        ledger.build(changed, repo=repo, log=lambda m: None)
    # nothing was lost
    assert git(repo, "rev-list", "--count", "main").strip() == str(len(TABLE))


def test_registry_adds_only_newer_releases():
    base = TABLE[:-2]
    utc = dt.timezone.utc
    registry = {
        TABLE[-2].version: TABLE[-2].date.astimezone(utc),
        TABLE[-1].version: TABLE[-1].date.astimezone(utc),
        "0.1.0": dt.datetime(2024, 2, 1, tzinfo=utc),  # older: never inserted
    }
    extended = ledger.extend_with_registry(base, registry)
    assert [r.version for r in extended] == [r.version for r in TABLE]
    assert extended[-1].date == TABLE[-1].date


def test_registry_unreachable_falls_back_to_table(repo):
    assert ledger.registry_releases(timeout=2, url="http://127.0.0.1:9/mlx.json") is None


def test_bad_table_row_is_one_clear_error(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("tag\tdate\tsha\nv0.1.0\t2024-02-01\tabc\n")
    with pytest.raises(ledger.LedgerError, match=r"t.tsv:2: bad row .*time zone"):
        ledger.read_table(str(table))


def test_asv_range_semantics_exclude_the_start(repo):
    from asv.plugins.git import Git

    ledger.build(TABLE, repo=repo, log=lambda m: None)
    g = Git(repo, repo)
    hashes = g.get_hashes_from_range("v0.20.0..v0.24.1")
    tags = {c: t for t, c in g.get_tags().items()}
    got = sorted((tags[h] for h in hashes), key=ledger.version_key)
    expected = [
        r.tag
        for r in TABLE
        if ledger.version_key("0.20.0") < ledger.version_key(r.version) <= ledger.version_key("0.24.1")
    ]
    assert got == expected and "v0.21.1" in got and "v0.20.0" not in got


def test_cli_offline_list(tmp_path):
    import sys

    out = subprocess.run(
        [sys.executable, ledger.__file__, "--offline", "--list", "--repo", str(tmp_path / "l")],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert out[-1].startswith(f"{TABLE[-1].tag}\t")
    assert len(out) == len(TABLE)


def test_registry_lists_the_table_releases_that_have_wheels():
    """The real package registry (skipped offline): its dates are what the table's
    newest rows were taken from."""
    registry = ledger.registry_releases(timeout=10)
    if registry is None:
        pytest.skip("package registry unreachable")
    for version in ("0.2.0", "0.21.1", "0.32.4"):
        assert version in registry
    table = {r.version: r for r in TABLE}
    assert registry["0.32.4"] == table["0.32.4"].date  # appended from the registry
    extended = ledger.extend_with_registry(TABLE, registry)
    assert [r.version for r in extended[: len(TABLE)]] == [r.version for r in TABLE]
