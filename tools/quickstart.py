#!/usr/bin/env python3
"""Set up mlx-asv from nothing (Python and git), then run the main job or the tests.

    python3 tools/quickstart.py main    # set up, asv run over the last releases, asv publish
    python3 tools/quickstart.py test    # set up, run the test suite
    python3 tools/quickstart.py setup   # set up only

Set-up (each step is skipped when already done):
1. ``.venv/``: asv, virtualenv, pytest, and the libraries the tests import
   (``requirements.txt``) with the newest MLX release that the tests pin;
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
# The main job: the newest releases of the ledger. asv's range A..B excludes A,
# so HEAD~3..HEAD is the three newest releases.
MAIN_RANGE = "HEAD~3..HEAD"
# What the main job benchmarks: a regex for asv's -b.
MAIN_BENCHMARKS = os.environ.get("MLX_ASV_MAIN_BENCH", r"^ops\.")


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
        wanted = hashlib.sha256(f.read() + TEST_MLX_VERSION.encode()).hexdigest()
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
        check([PY, "tools/install.py", "--version", TEST_MLX_VERSION])
        with open(stamp, "w") as f:
            f.write(wanted + "\n")
    check([PY, "tools/ledger.py"])
    check([ASV, "machine", "--yes"], stdout=subprocess.DEVNULL)
    print(f"quickstart: set up in {time.time() - started:.0f} s", flush=True)


def main_job():
    started = time.time()
    # --skip-existing-successful: a second run (or one after an interruption)
    # only does what is missing, and keeps every earlier result.
    cmd = [ASV, "run", "--skip-existing-successful", "--bench", MAIN_BENCHMARKS]
    if sys.platform == "linux" and not os.path.exists("/proc/driver/nvidia/version"):
        # One server process imports the benchmarks (and torch) once and forks
        # a child per case: each case still runs in a process of its own, but
        # ~1 s of imports per process (hundreds of them) is saved. Not used
        # on macOS (Metal is not fork-safe) or with CUDA.
        cmd += ["--launch-method", "forkserver"]
    rc = run(cmd + [MAIN_RANGE])
    # asv run exits 2 when a case or a release failed; the rest has results:
    # publish them all the same, and hand the failure on.
    if rc not in (0, 2):
        sys.exit(f"quickstart: asv run failed (exit {rc})")
    check([ASV, "publish"])
    # asv's pages load their JavaScript from CDNs: serve local copies, so the
    # site also works offline. Not fatal: online, the CDNs serve it anyway.
    run([PY, "reporting/site_assets.py"])
    print(f"quickstart: main job done in {time.time() - started:.0f} s; open html/index.html "
          f"(or: {ASV} preview)", flush=True)
    if rc:
        sys.exit("quickstart: some cases or releases failed: see asv's output above")


def tests(args):
    return run([PY, "-m", "pytest", "-q", "tests", *args])


def main(argv):
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
