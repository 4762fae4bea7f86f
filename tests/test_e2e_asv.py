"""End to end: the real asv over real MLX releases, from a copy of this project.

Creates (or reuses) asv's environment in .asv/env, installs real MLX wheels,
and takes a few minutes; it is what the README's commands do, on a small scale.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from mlx_asv.envs import ledger
from mlx_asv.measure import protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASV = [sys.executable, "-m", "asv"]
OK_RELEASES = ("v0.32.3", "v0.32.4")
NO_WHEEL_RELEASE = "v0.22.0"  # macOS-only wheels
MACHINE = "e2e-test"
# The real benchmark the runs time: one of the cheapest ops families (two cases of 2M and 8M
# elements; ops.SumAll's inputs reach 1.3e8 elements, ~15 s a release on this 2-core machine).
BENCH = "ops.ReLU.time_op"

# A test-only benchmark (never in benchmarks/): it is really twice as slow on
# the newer release, so `asv continuous` must report a regression.
PROBE = '''
import os
import time
from .common import mlx_version

class CrashProbe:
    """One case aborts the process, one hangs past the timeout, one is fine
    (it takes well under a second: the timeout only needs to end the hang)."""
    params = ["ok", "abort", "hang"]
    param_names = ["how"]
    timeout = 5
    def time_case(self, how):
        if how == "abort":
            os.abort()
        if how == "hang":
            time.sleep(3600)
        time.sleep(0.001)

class GateProbe:
    """Eight sleeps of 5 ms; 'slow' sleeps 7.5 ms from MLX 0.32.4 on (1.5x)."""
    params = ["slow", "a", "b", "c", "d", "e", "f", "g"]
    param_names = ["case"]
    repeat = (5, 10, 2.0)
    def time_sleep(self, case):
        time.sleep(0.0075 if case == "slow" and mlx_version() >= (0, 32, 4) else 0.005)

class RegressionProbe:
    """Sleeps 10 ms on MLX < 0.32.4 and 20 ms from 0.32.4 on."""
    repeat = (10, 20, 5.0)
    def time_sleep(self):
        time.sleep(0.02 if mlx_version() >= (0, 32, 4) else 0.01)
'''


def asv(project, *args, check=True):
    env = dict(os.environ, MLX_ASV_BACKENDS="mlx_cpu,torch_cpu")
    proc = subprocess.run(
        [*ASV, *args], cwd=project, capture_output=True, text=True, env=env, timeout=1800
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"asv {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def test_probe_is_not_in_the_real_suite():
    assert not os.path.exists(os.path.join(ROOT, "benchmarks", "test_probe.py"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of this project whose asv shares the real environment directory."""
    tmp = tmp_path_factory.mktemp("project")
    for name in ("benchmarks", "tools", "mlx_asv"):
        shutil.copytree(os.path.join(ROOT, name), tmp / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "benchmarks" / "test_probe.py").write_text(PROBE)
    with open(os.path.join(ROOT, "asv.conf.json")) as f:
        conf = f.read()
    # One environment for the tests and the main job: installing torch is slow.
    conf = conf.replace('"env_dir": ".asv/env"', f'"env_dir": {json.dumps(os.path.join(ROOT, ".asv", "env"))}')
    (tmp / "asv.conf.json").write_text(conf)
    ledger.ensure(repo=str(tmp / "ledger"), online=False, log=lambda m: None)
    asv(tmp, "machine", "--yes", "--machine", MACHINE)
    return tmp


def hashes_of(project, tags):
    built = dict((rel.tag, commit) for rel, commit in
                 ledger.build(ledger.read_table(), repo=str(project / "ledger"), log=lambda m: None))
    return [built[t] for t in tags]


def results_for(project, commit):
    folder = project / "results" / MACHINE
    [path] = [p for p in folder.iterdir() if p.name.startswith(commit[:8])]
    return json.loads(path.read_text())


def test_run_two_releases_and_a_release_without_wheel(project):
    tags = (NO_WHEEL_RELEASE,) + OK_RELEASES
    commits = hashes_of(project, tags)
    (project / "hashes.txt").write_text("\n".join(commits) + "\n")
    # forked from a server that imported the benchmarks once (as the main job and the gate run on
    # Linux CPU): each case would otherwise import MLX and torch in a process of its own
    launch = ["--launch-method", method] if (method := protocol.default_launch_method()) else []
    proc = asv(project, "run", "--machine", MACHINE, "--quick", "--show-stderr", *launch,
               "-b", r"^ops\.ReLU\.", "HASHFILE:hashes.txt", check=False)
    out = proc.stdout
    # asv run exits 2 when anything failed: here only the release without a wheel
    assert proc.returncode == 2, out[-3000:]
    assert out.count("no wheel for") >= 1 and "Traceback" not in out + proc.stderr
    # the release without a wheel fails in seconds, with its one-line reason
    assert "MLX 0.22.0: no wheel for" in out and "nearest with wheels: 0.21.1, 0.25.2" in out
    failures = (project / "results" / "install-failures.tsv").read_text()
    assert failures.startswith("0.22.0\t") and "no wheel" in failures
    failed = results_for(project, commits[0])
    assert failed["results"][BENCH][0] is None
    # both installable releases have numbers on the CPU backends
    for commit in commits[1:]:
        res = results_for(project, commit)["results"][BENCH]
        values, (cases, backends) = res[0], res[1]
        grid = dict(zip([(c, b) for c in cases for b in backends], values))
        for case in cases:
            for b in ("'mlx_cpu'", "'torch_cpu'"):
                assert grid[(case, b)] is not None and grid[(case, b)] > 0, (commit, case, b)
            # skipped (no GPU here) is NaN in asv's results; a failure would be None
            assert math.isnan(grid[(case, "'mlx_gpu'")])


def test_publish_builds_the_site(project):
    asv(project, "publish")
    html = project / "html"
    assert (html / "index.html").exists()
    index = json.loads((html / "index.json").read_text())
    assert BENCH in index["benchmarks"]
    assert set(OK_RELEASES) <= set(index["tags"])
    graphs = list((html / "graphs").rglob(BENCH + ".json"))
    assert graphs


def test_continuous_fails_on_a_regression_and_compare_does_not(project):
    base, head = OK_RELEASES
    # -a rounds=1: asv's two interleaved rounds would install each release twice more
    proc = asv(project, "continuous", "--machine", MACHINE, "-b", "RegressionProbe", "-a", "rounds=1",
               base, head, check=False)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "PERFORMANCE DECREASED" in proc.stdout
    # asv compare reports the same step but always exits 0
    cmp = asv(project, "compare", "--machine", MACHINE, "--factor", "1.1", base, head, check=False)
    assert cmp.returncode == 0 and "RegressionProbe.time_sleep" in cmp.stdout
    # a 2x step is within a factor of 3: no regression, exit 0
    ok = asv(project, "continuous", "--machine", MACHINE, "--factor", "3", "-b", "RegressionProbe",
             "-a", "rounds=1", base, head, check=False)
    assert ok.returncode == 0, ok.stdout[-3000:]


def test_a_crash_or_a_hang_loses_that_case_only(project):
    [commit] = hashes_of(project, OK_RELEASES[-1:])
    # one round: asv reruns a benchmark that has any case left, so a second round would hang again
    proc = asv(project, "run", "--machine", MACHINE, "-b", "CrashProbe", "-a", "rounds=1", f"{commit}^!",
               check=False)
    assert proc.returncode == 2, proc.stdout[-3000:]  # something failed, the run completed
    res = results_for(project, commit)["results"]["test_probe.CrashProbe.time_case"]
    values = dict(zip(res[1][0], res[0]))
    assert values["'ok'"] is not None and values["'ok'"] > 0
    assert values["'abort'"] is None and values["'hang'"] is None
    # earlier results of the same release survive the failed cases
    assert results_for(project, commit)["results"][BENCH][0] is not None


def test_find_bisects_to_the_release_that_got_slower(project):
    proc = asv(project, "find", "--machine", MACHINE, "v0.32.1..v0.32.4",
               "test_probe.RegressionProbe.time_sleep", check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    found = [line for line in proc.stdout.splitlines() if "Greatest regression found" in line]
    assert found and "v0.32.4" in found[0], proc.stdout[-3000:]


def gate(project, *args):
    return subprocess.run([sys.executable, "-m", "mlx_asv.commands", "gate", *args, "--budget", "5"], cwd=project,
                          capture_output=True, text=True, timeout=1200,
                          env=dict(os.environ, MLX_ASV_OFFLINE="1"))


def test_gate_confirms_a_real_slowdown_and_exits_1(project):
    proc = gate(project, *OK_RELEASES, "-b", "GateProbe")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(next((project / ".asv" / "gate").glob("*v0.32.3-v0.32.4/verdicts.json")).read_text())
    verdicts = {c["key"]: c for c in report["cases"]}
    slow = verdicts["test_probe.GateProbe.time_sleep('slow')"]
    # 7.5 ms against 5 ms of sleep, each plus the same wake-up latency: just under 1.5x
    assert slow["verdict"] == "slower" and 1.3 < slow["lo"] <= slow["hi"] < 1.6 and "confirmed" in slow["note"]
    assert all(c["verdict"] in ("same", "undecided") for k, c in verdicts.items() if "'slow'" not in k)
    assert "## Slower (confirmed) (1)" in proc.stdout
    # its results never mix with results/: they are in the gate's own folder
    assert not any(p.name.startswith(report["candidate"][:8]) and "GateProbe" in p.read_text()
                   for p in (project / "results" / MACHINE).glob("*.json"))
