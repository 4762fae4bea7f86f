#!/usr/bin/env python3
"""Set up mlx-asv from nothing (Python and git), then run the main job or the tests.

    python3 tools/quickstart.py main    # set up, the newest releases in one interleaved run, the site, the verdicts
    python3 tools/quickstart.py test    # set up, run the test suite
    python3 tools/quickstart.py setup   # set up only

Set-up (each step is skipped when already done):
1. ``.venv/``: asv, virtualenv, pytest, and the libraries the tests import
   (``requirements.txt``), this checkout as the editable package ``mlx_asv`` (its
   command ``mlx-asv``) and the newest MLX release that the tests pin;
2. the release ledger (``tools/ledger.py``);
3. asv's machine description (``asv machine --yes``: CI has no one to answer).

Every command it runs is printed, so it doubles as a list of what to type.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
BIN = os.path.join(VENV, "Scripts" if os.name == "nt" else "bin")
PY = os.path.join(BIN, "python")
ASV = os.path.join(BIN, "asv")
# The MLX release the tests run against in .venv (asv installs its own per commit).
TEST_MLX_VERSION = "0.32.4"


def run(cmd, **kwargs):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, **kwargs).returncode


def check(cmd, **kwargs):
    rc = run(cmd, **kwargs)
    if rc != 0:
        sys.exit(f"quickstart: step failed (exit {rc}): {' '.join(cmd)}")


def setup():
    started = time.time()
    requirements = os.path.join(ROOT, "requirements.txt")
    with open(requirements, "rb") as f:
        wanted = f.read() + TEST_MLX_VERSION.encode()
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        wanted = hashlib.sha256(wanted + f.read()).hexdigest()
    stamp = os.path.join(VENV, ".mlx-asv-setup")
    if not os.path.exists(PY):
        check([sys.executable, "-m", "venv", VENV])
    try:
        with open(stamp) as f:
            done = f.read().strip() == wanted
    except OSError:
        done = False
    if not done:
        check([PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirements])
        # the mlx_asv package and its mlx-asv command, editable: the checkout's code runs
        check([PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-build-isolation", "-e", "."])
        check([PY, "tools/install.py", "--version", TEST_MLX_VERSION])
        with open(stamp, "w") as f:
            f.write(wanted + "\n")
    check([PY, "tools/ledger.py"])
    check([ASV, "machine", "--yes"], stdout=subprocess.DEVNULL)
    print(f"quickstart: set up in {time.time() - started:.0f} s", flush=True)


def main_job():
    # tools/mainjob.py: the newest releases in one interleaved session,
    # asv publish, the regressions page cut to confirmed verdicts, a summary.
    rc = run([PY, "tools/mainjob.py"])
    if rc:
        sys.exit(f"quickstart: the main job failed (exit {rc}): see its output above")


def tests(args):
    return run([PY, "-m", "pytest", "-q", "tests", *args])


def main(argv):
    # The main job's 15-minute budget counts from here, the set-up included.
    os.environ.setdefault("MLX_ASV_STARTED", f"{time.time():.3f}")
    what = argv[0] if argv else "setup"
    if what not in ("setup", "main", "test"):
        sys.exit("usage: python3 tools/quickstart.py [setup|main|test [pytest args]]")
    setup()
    if what == "main":
        main_job()
    elif what == "test":
        return tests(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
