import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


# Three releases, v0.1.0 to v0.3.0: a ledger built in a second, for tests that add branches to one.
SMALL_TABLE = "tag\tdate\n" + "".join(f"v0.{i}.0\t2025-0{i}-01T00:00:00+00:00\n" for i in range(1, 4))


@pytest.fixture
def small_ledger(tmp_path):
    """A ledger of SMALL_TABLE's releases in tmp_path/ledger (its path)."""
    from mlx_asv.envs import ledger

    table = tmp_path / "releases.tsv"
    table.write_text(SMALL_TABLE)
    repo = str(tmp_path / "ledger")
    ledger.build(ledger.read_table(str(table)), repo=repo, log=lambda m: None)
    return repo


def make_venv(folder):
    """A fresh virtual environment with pip in ``folder``; its python's path.

    virtualenv (asv makes its environments with it) seeds pip from its cache
    in about a second; the standard library's venv runs ensurepip, 7 s here."""
    try:
        import virtualenv  # noqa: F401
    except ImportError:
        import venv

        venv.EnvBuilder(with_pip=True).create(str(folder))
    else:
        subprocess.run([sys.executable, "-m", "virtualenv", "-q", str(folder)], check=True)
    return os.path.join(str(folder), "Scripts" if os.name == "nt" else "bin", "python")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: full-size checks (seconds each); run by default, deselect with -m 'not slow'")


# The input cache (benchmarks/common.py) of this test session: a folder of
# its own, so tests neither read a stale user cache nor fill it. Set before
# any asv run the tests start, which passes it to the benchmark processes.
_SESSION_INPUT_CACHE = None
if not os.environ.get("MLX_ASV_INPUT_CACHE"):
    import tempfile

    _SESSION_INPUT_CACHE = os.environ["MLX_ASV_INPUT_CACHE"] = tempfile.mkdtemp(prefix="mlx-asv-inputs-")


def pytest_sessionfinish(session, exitstatus):
    if _SESSION_INPUT_CACHE:
        import shutil

        shutil.rmtree(_SESSION_INPUT_CACHE, ignore_errors=True)
