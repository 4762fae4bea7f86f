"""The torch matrix (asv.torch.conf.json, tools/torch_matrix.py) and its
torch installer (tools/torch_install.py), without downloading any torch.

- the default config still pins exactly one torch, installed by asv itself;
- asv.torch.conf.json is what tools/torch_matrix.py writes from asv.conf.json,
  and asv's own matrix code makes one environment per torch version from it,
  each with its own numpy;
- the installer's choice per platform, its one-line refusal of CUDA libraries
  on a machine without a GPU, its one-line failure for a version without a
  wheel (the run goes on: exit 1, a row in the failure log);
- the real mechanism on light fake packages: a throw-away virtual environment,
  the real pip, fake ``torch`` wheels (a "CPU build" 2.7.1+cpu and a "CUDA
  build" 2.2.2 that pulls a fake nvidia package) in a local folder.
"""

import json
import os
import subprocess
import sys
import types
import zipfile

import pytest

from mlx_asv.envs import asv_config
from mlx_asv.envs import torch_install as ti
from mlx_asv.commands import torch_matrix as tm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------
# The configs
# --------------------------------------------------------------------------


def test_default_config_still_pins_one_torch_installed_by_asv():
    base = asv_config.load_conf(tm.CONF)
    assert base["matrix"]["req"]["torch"] == ["2.13.0"]
    assert tm.TORCH_VAR not in base["matrix"].get("env", {})
    assert not any("torch_install" in c for c in base["install_command"])
    from asv import environment

    conf = types.SimpleNamespace(matrix=base["matrix"], exclude=base.get("exclude", []),
                                 include=base.get("include", []))
    envs = list(environment.iter_matrix("virtualenv", ["3.11"], conf))
    assert len(envs) == 1 and envs[0][("req", "torch")] == "2.13.0"


def test_torch_config_is_what_the_tool_writes_from_asv_conf():
    assert tm.stale() is None, tm.stale()


def test_torch_config_shares_benchmarks_ledger_envs_and_results():
    base, torch = asv_config.load_conf(tm.CONF), asv_config.load_conf(tm.TORCH_CONF)
    for field in ("repo", "benchmark_dir", "env_dir", "results_dir", "html_dir", "plugins", "project"):
        assert torch[field] == base[field], field
    assert torch["install_command"][0].startswith("python {conf_dir}/tools/torch_install.py")
    assert torch["install_command"][1:] == base["install_command"]
    assert "torch" not in torch["matrix"]["req"]


def test_one_environment_per_torch_version_with_its_own_numpy():
    envs = tm.environments(tm.torch_config(asv_config.load_conf(tm.CONF), ["2.2.2", "2.7.1", "2.13.0"]))
    assert [t for t, _ in envs] == ["2.2.2", "2.7.1", "2.13.0"]
    numpy = {t: r["numpy"] for t, r in envs}
    assert numpy == {"2.2.2": "1.26.4", "2.7.1": "2.4.6", "2.13.0": "2.4.6"}
    assert all(r["transformers"] == "5.23.0" and r["asv_runner"] == "0.3.2" for _, r in envs)


def test_new_versions_only_add_no_pins_and_no_excludes():
    conf = tm.torch_config(asv_config.load_conf(tm.CONF), ["2.7.1", "2.13.0"])
    assert conf["matrix"]["req"]["numpy"] == ["2.4.6"]
    assert "exclude" not in conf
    assert [t for t, _ in tm.environments(conf)] == ["2.7.1", "2.13.0"]


def test_environment_names_carry_the_torch_version():
    from asv import environment

    names = set()
    for torch, reqs in tm.environments(asv_config.load_conf(tm.TORCH_CONF)):
        names.add(environment.get_env_name("virtualenv", "3.11", reqs,
                                           {("build", tm.TORCH_VAR): torch, ("build", "MLX_ASV_FLAVOR"): "auto"}))
    assert any("numpy1.26.4" in n and "MLX_ASV_TORCH2.2.2" in n for n in names), names
    assert len(names) == 3


def test_bad_versions_are_one_line():
    with pytest.raises(tm.MatrixError, match="torch releases like"):
        tm.parse_versions("2.2,latest")
    assert tm.parse_versions("2.13.0,2.2.2,2.2.2") == ["2.2.2", "2.13.0"]


def test_stale_copy_is_reported(tmp_path):
    path = tmp_path / "asv.torch.conf.json"
    path.write_text(tm.render(tm.torch_config(asv_config.load_conf(tm.CONF), ["2.7.1"])))
    assert tm.stale(str(path)) is None
    data = asv_config.load_conf(str(path))
    data["install_timeout"] = 1
    path.write_text(json.dumps(data))
    assert "out of date" in tm.stale(str(path))


# --------------------------------------------------------------------------
# The installer's choice
# --------------------------------------------------------------------------

HERE = ["2.15.0", "2.13.0+cpu", "2.13.0", "2.7.1", "2.2.2", "2.0.0"]  # this machine's pip


@pytest.mark.parametrize("kind,version,versions,expected", [
    ("cpu", "2.13.0", HERE, "torch==2.13.0+cpu"),        # the local CPU build
    ("cpu", "2.7.1", HERE + ["2.7.1+cpu"], "torch==2.7.1+cpu"),  # from the CPU index
    ("cpu", "2.7.1", None, "torch==2.7.1+cpu"),          # pip can't tell: never the CUDA build
    ("cuda", "2.7.1", HERE, "torch==2.7.1"),
    ("macos", "2.7.1", ["2.7.1"], "torch==2.7.1"),
    ("registry", "2.7.1", None, "torch==2.7.1"),
])
def test_plan_picks_the_build(kind, version, versions, expected):
    args, what = ti.plan(version, kind, versions, cpu_index="https://example/cpu" if kind == "cpu" else None)
    assert args[0] == expected
    assert "GB" in what or "MB" in what or kind == "registry"


def test_cpu_only_machine_refuses_the_cuda_build_in_one_line():
    with pytest.raises(ti.TorchInstallError) as err:
        ti.plan("2.2.2", "cpu", HERE, None, "Name or service not known")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("torch 2.2.2: no CPU build")
    assert "nvidia" in msg and "GB" in msg and "MLX_ASV_TORCH_CUDA=1" in msg
    args, what = ti.plan("2.2.2", "cpu", HERE, None, "", allow_cuda=True)
    assert args == ["torch==2.2.2"] and "nvidia" in what


@pytest.mark.parametrize("kind", ["cpu", "cuda", "macos"])
def test_no_wheel_is_one_line_with_the_nearest(kind):
    with pytest.raises(ti.TorchInstallError, match=r"^torch 2\.8\.0: no wheel for .*nearest with wheels: "
                                                   r"2\.7\.1, 2\.13\.0$"):
        ti.plan("2.8.0", kind, HERE)


def test_build_kind():
    assert ti.build_kind("Darwin", "arm64") == "macos"
    assert ti.build_kind("Linux", "x86_64", flavor="cpu") == "cpu"
    assert ti.build_kind("Linux", "x86_64", flavor="cuda13") == "cuda"
    assert ti.build_kind("Linux", "aarch64", flavor="cpu") == "registry"
    assert ti.build_kind("Windows", "AMD64") == "registry"


class FakePip:
    """Answers ``pip index versions`` with ``versions``; records installs."""

    def __init__(self, versions):
        self.versions = versions
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)
        if args[0] == "index":
            return subprocess.CompletedProcess(args, 0, f"Available versions: {', '.join(self.versions)}\n", "")
        return subprocess.CompletedProcess(args, 0, "", "")


def test_refusal_installs_nothing_and_opt_in_installs(monkeypatch):
    monkeypatch.setattr(ti, "installed_version", lambda: None)
    monkeypatch.setattr(ti, "index_reachable", lambda url: (False, "offline"))
    pip = FakePip(HERE)
    with pytest.raises(ti.TorchInstallError, match="refusing"):
        ti.torch_install("2.2.2", environ={"MLX_ASV_FLAVOR": "cpu"}, pip=pip, log=lambda m: None, kind="cpu")
    assert [c[0] for c in pip.calls] == ["index"]
    monkeypatch.setattr(ti, "installed_version", lambda: "2.2.2" if pip.calls[-1][0] == "install" else None)
    got = ti.torch_install("2.2.2", environ={ti.CUDA_OPT_IN: "1"}, pip=pip, log=lambda m: None, kind="cpu")
    assert got == "2.2.2" and pip.calls[-1][-1] == "torch==2.2.2"


def test_an_environment_that_has_the_version_is_left_alone(monkeypatch):
    monkeypatch.setattr(ti, "installed_version", lambda: "2.13.0+cpu")
    pip = FakePip(HERE)
    assert ti.torch_install("2.13.0", environ={}, pip=pip, log=lambda m: None) == "2.13.0+cpu"
    assert pip.calls == []


def test_main_fails_in_one_line_and_keeps_the_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(ti, "installed_version", lambda: None)
    monkeypatch.setattr(ti, "index_reachable", lambda url: (False, "offline"))
    monkeypatch.setattr(ti, "_pip", FakePip(HERE))
    monkeypatch.setenv("MLX_ASV_FLAVOR", "cpu")
    log = tmp_path / "install-failures.tsv"
    monkeypatch.setenv(ti.TORCH_VAR, "2.8.0")
    assert ti.main(["--failure-log", str(log)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("torch_install.py: torch 2.8.0: no wheel for")
    assert log.read_text().startswith("torch 2.8.0\t")
    monkeypatch.delenv(ti.TORCH_VAR)
    assert ti.main([]) == 1
    assert "MLX_ASV_TORCH" in capsys.readouterr().err


# --------------------------------------------------------------------------
# The mechanism, for real, on fake packages (no network, no torch download)
# --------------------------------------------------------------------------


def fake_wheel(folder, name, version, requires=(), module=None):
    """A minimal pure-Python wheel of distribution ``name``."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = os.path.join(folder, f"{dist}-py3-none-any.whl")
    module = module or name.replace("-", "_")
    meta = "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{module}/__init__.py", f"__version__ = {version!r}\n")
        z.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{meta}")
        z.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                              "Tag: py3-none-any\n")
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return path


@pytest.fixture
def fake_site(tmp_path):
    """A bare virtual environment whose pip (the real one) sees only a folder
    of fake wheels: a 'CPU build' torch 2.7.1+cpu and a 'CUDA build' torch 2.2.2."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    fake_wheel(str(wheels), "torch", "2.7.1+cpu")
    fake_wheel(str(wheels), "torch", "2.2.2", requires=["nvidia-fake-cublas"])
    fake_wheel(str(wheels), "nvidia-fake-cublas", "12.1")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    import pip

    pipdir = tmp_path / "pipdir"  # the real pip, and nothing else of this environment
    pipdir.mkdir()
    os.symlink(os.path.dirname(pip.__file__), pipdir / "pip")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PYTHONPATH=str(pipdir), PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1",
               PIP_FIND_LINKS=str(wheels), PIP_DISABLE_PIP_VERSION_CHECK="1", MLX_ASV_FLAVOR="cpu",
               **{ti.CPU_INDEX_VAR: "file:///nonexistent-cpu-index"})
    py = str(venv / "bin" / "python")

    def run(version, **extra):
        proc = subprocess.run([py, os.path.join(ROOT, "tools", "torch_install.py"),
                               "--failure-log", str(tmp_path / "results" / "failures.tsv")],
                              env=dict(env, **{ti.TORCH_VAR: version}, **extra), capture_output=True, text=True)
        have = subprocess.run([py, "-c", "import importlib.metadata as m; print(sorted("
                               "d.metadata['Name'] + ' ' + d.version for d in m.distributions()))"],
                              env=env, capture_output=True, text=True).stdout.strip()
        return proc, have

    return types.SimpleNamespace(run=run, tmp=tmp_path)


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64",
                    reason="the CPU-build rule is Linux x86-64's")
def test_fake_torch_versions_through_the_real_pip(fake_site):
    proc, have = fake_site.run("2.7.1")
    assert proc.returncode == 0, proc.stderr
    assert have == "['torch 2.7.1+cpu']"
    assert "torch 2.7.1+cpu: the CPU build" in proc.stdout
    proc, _ = fake_site.run("2.7.1")
    assert "already installed" in proc.stdout

    proc, have = fake_site.run("2.2.2")  # only the "CUDA build": refused, nothing downloaded
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing" in lines[0] and "nvidia" in lines[0], lines
    assert have == "['torch 2.7.1+cpu']"
    failures = (fake_site.tmp / "results" / "failures.tsv").read_text()
    assert failures.startswith("torch 2.2.2\t")

    proc, have = fake_site.run("2.5.0")
    assert proc.returncode == 1 and "nearest with wheels: 2.2.2, 2.7.1" in proc.stderr

    proc, have = fake_site.run("2.2.2", **{ti.CUDA_OPT_IN: "1"})
    assert proc.returncode == 0, proc.stderr
    assert have == "['nvidia-fake-cublas 12.1', 'torch 2.2.2']"
    installs = (fake_site.tmp / "results" / "torch-installs.tsv").read_text()
    assert "torch 2.2.2\t" in installs and "torch 2.7.1\t" in installs


# --------------------------------------------------------------------------
# models.py: transformers and an old torch
# --------------------------------------------------------------------------

TRANSFORMERS_REQUIRES = ["numpy>=1.17", 'torch>=2.6; extra == "torch"', 'torchvision; extra == "vision"',
                         'torch>=2.6; extra == "serving"']


@pytest.mark.parametrize("torch_version,skipped", [("2.2.2", True), ("2.5.1+cpu", True),
                                                   ("2.6.0", False), ("2.13.0+cpu", False)])
def test_models_skip_where_transformers_disables_the_torch(torch_version, skipped):
    from benchmarks import models

    versions = {"transformers": "5.23.0", "torch": torch_version}
    why = models.transformers_torch_mismatch(versions.get, lambda d: TRANSFORMERS_REQUIRES)
    if skipped:
        assert why.startswith("transformers 5.23.0 needs torch>=2.6") and torch_version in why
    else:
        assert why is None


def test_models_this_environment_has_no_mismatch():
    """The tools' environment (torch 2.13.0, transformers 5.23.0, the default
    config's pins): transformers' real metadata, no skip."""
    from benchmarks import models

    assert models.transformers_torch_mismatch() is None


# --------------------------------------------------------------------------
# The report across torch versions (mlx_asv/report/torch_report.py)
# --------------------------------------------------------------------------

COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
           "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]
SOFTMAX = "ops.Softmax.time_op"
MACHINE = {"arch": "x86_64", "cpu": "Test CPU", "machine": "box", "num_cpu": "2", "os": "Linux",
           "ram": str(2 ** 33), "version": 1}
# torch version -> ms of (mlx_cpu, torch_cpu) for the one case
TIMES_BY_TORCH = {"2.2.2": (10.0, 30.0), "2.7.1": (10.1, 20.0), "2.13.0": (10.0, 10.0)}


def torch_results_file(commit, torch, matrix=True, started=1700000000000):
    mlx, tor = TIMES_BY_TORCH[torch]
    values = [mlx / 1e3, tor / 1e3]
    ci = lambda f: [v * f for v in values]  # noqa: E731
    row = [values, [["'dim=8x16 axis=0'"], ["'mlx_cpu'", "'torch_cpu'"]], "v1", started, 1.0,
           ci(0.99), ci(1.01), ci(0.995), ci(1.005), [1, 1], [10, 10], None, None]
    if matrix:
        reqs = {"asv_runner": "0.3.2", "numpy": "1.26.4" if torch == "2.2.2" else "2.4.6",
                "transformers": "5.23.0"}
        env_vars = {"MLX_ASV_FLAVOR": "auto", "MLX_ASV_TORCH": torch, "MLX_ENABLE_TF32": "1"}
        env = (f"virtualenv-py3.11-asv_runner0.3.2-numpy{reqs['numpy']}-transformers5.23.0-"
               f"MLX_ASV_FLAVORauto-MLX_ASV_TORCH{torch}-MLX_ENABLE_TF321")
    else:  # asv.conf.json's pinned torch
        reqs = {"asv_runner": "0.3.2", "numpy": "2.4.6", "torch": torch, "transformers": "5.23.0"}
        env_vars = {"MLX_ASV_FLAVOR": "auto", "MLX_ENABLE_TF32": "1"}
        env = f"virtualenv-py3.11-asv_runner0.3.2-numpy2.4.6-torch{torch}-transformers5.23.0-MLX_ASV_FLAVORauto-MLX_ENABLE_TF321"
    return env, {"commit_hash": commit, "env_name": env, "date": started, "params": dict(MACHINE, python="3.11"),
                 "python": "3.11", "requirements": reqs, "env_vars": env_vars, "result_columns": COLUMNS,
                 "results": {SOFTMAX: row}, "durations": {}, "version": 2}


@pytest.fixture
def torch_results(tmp_path, small_ledger):
    """results/ with MLX v0.3.0 under the torch matrix (2.2.2, 2.7.1, 2.13.0),
    and v0.2.0 under the default config (torch 2.13.0)."""
    commits = {t: subprocess.run(["git", "--git-dir", small_ledger, "rev-parse", t], capture_output=True,
                                 text=True, check=True).stdout.strip() for t in ("v0.2.0", "v0.3.0")}
    folder = tmp_path / "results" / "box"
    folder.mkdir(parents=True)
    (folder / "machine.json").write_text(json.dumps(MACHINE))
    (tmp_path / "results" / "benchmarks.json").write_text(json.dumps({SOFTMAX: {
        "name": SOFTMAX, "type": "time", "unit": "seconds", "param_names": ["case", "backend"],
        "params": [["'dim=8x16 axis=0'"], ["'mlx_cpu'", "'torch_cpu'"]], "version": "v1"}, "version": 2}))
    for torch in TIMES_BY_TORCH:
        env, data = torch_results_file(commits["v0.3.0"], torch)
        (folder / f"{commits['v0.3.0'][:8]}-{env}.json").write_text(json.dumps(data))
    env, data = torch_results_file(commits["v0.2.0"], "2.13.0", matrix=False)
    (folder / f"{commits['v0.2.0'][:8]}-{env}.json").write_text(json.dumps(data))
    return types.SimpleNamespace(results=str(tmp_path / "results"), ledger=small_ledger, commits=commits,
                                 root=tmp_path)


def test_results_show_one_torch_version_the_control_by_default(torch_results):
    from mlx_asv.report import results

    res = results.Results(torch_results.results, ledger_dir=torch_results.ledger)
    assert res.torch_versions == ["2.2.2", "2.7.1", "2.13.0"] and res.torch == "2.13.0"
    point = res.points[("v0.3.0", SOFTMAX, "dim=8x16 axis=0", "torch_cpu")]
    assert point["value"] == pytest.approx(0.010)  # not another torch version's result
    assert res.release_info["v0.3.0"]["torch"] == {"2.13.0"}
    old = results.Results(torch_results.results, ledger_dir=torch_results.ledger, torch="2.2.2")
    assert old.points[("v0.3.0", SOFTMAX, "dim=8x16 axis=0", "torch_cpu")]["value"] == pytest.approx(0.030)
    assert "v0.2.0" not in old.releases()
    with pytest.raises(results.ReportError, match="no results of torch 1.13.1"):
        results.Results(torch_results.results, ledger_dir=torch_results.ledger, torch="1.13.1")


def test_without_the_control_a_torch_version_must_be_chosen(torch_results):
    from mlx_asv.report import results

    for path in glob_files(torch_results.results):
        if "torch2.13.0" in path or "TORCH2.13.0" in path:
            os.remove(path)
    with pytest.raises(results.ReportError, match=r"torch 2\.2\.2, 2\.7\.1 .*--torch"):
        results.Results(torch_results.results, ledger_dir=torch_results.ledger)


def glob_files(folder):
    return [os.path.join(folder, "box", n) for n in os.listdir(os.path.join(folder, "box")) if n != "machine.json"]


def test_torch_version_table_cross_run(torch_results):
    from mlx_asv.report import render, torch_report

    tr = torch_report.TorchReport(torch_results.results, ledger_dir=torch_results.ledger, release="v0.3.0")
    assert tr.releases == ["2.2.2", "2.7.1", "2.13.0"]
    headers, rows = render.release_table(tr, tr.changes())
    body = {r[1]: r[2:] for r in rows}
    assert body["torch_cpu"][0] == "30.00"
    assert body["torch_cpu"][1].startswith("**20.00 (-33%) ▽")  # cross-run: a mark, not a verdict
    assert body["mlx_cpu"][1] == "10.10 (+1%)"
    text = torch_report.markdown(tr)
    assert "## Across torch versions, MLX v0.3.0" in text and "| torch 2.2.2 |" in text.replace("  ", " ")
    assert "## Detailed benchmark, MLX v0.3.0, torch 2.7.1 (ms)" in text
    assert "numpy1.26.4" in text  # the old torch's environment says its numpy


def test_torch_version_table_verdicts_from_a_torch_session(torch_results):
    """A session of tools/torch_matrix.py --compare (sides '<commit>@torch<v>') decides the cells."""
    import random

    from mlx_asv.report import render, torch_report
    from mlx_asv.report.sessions import Sessions

    commit = torch_results.commits["v0.3.0"]
    rng = random.Random(5)
    sides = {v: torch_report.side(commit, v) for v in TIMES_BY_TORCH}
    data = {}
    for bk, i in (("mlx_cpu", 0), ("torch_cpu", 1)):
        key = f"{SOFTMAX}('dim=8x16 axis=0', '{bk}')"
        data[key] = {sides[v]: [[t[i] / 1e3 * (1 + abs(rng.gauss(0, 0.003)))] * 3 for _ in range(4)]
                     for v, t in TIMES_BY_TORCH.items()}
    for i in range(30):  # more cases of the same noise, as a real session has
        data[f"x.F.time_op('c{i}', 'torch_cpu')"] = {s: [[0.01 * (1 + abs(rng.gauss(0, 0.003)))] for _ in range(4)]
                                                     for s in sides.values()}
    folder = torch_results.root / ".asv" / "torch" / "run"
    folder.mkdir(parents=True)
    (folder / "rounds.json").write_text(json.dumps({"commits": list(sides.values()), "rounds": 4, "data": data}))
    tr = torch_report.TorchReport(torch_results.results, ledger_dir=torch_results.ledger, release="v0.3.0",
                                  sessions=Sessions(root=str(torch_results.root)))
    headers, rows = render.release_table(tr, tr.changes())
    body = {r[1]: r[2:] for r in rows}
    assert "▼" in body["torch_cpu"][1] and "▼" in body["torch_cpu"][2]  # 30 -> 20 -> 10 ms: faster, decided
    assert "▲" not in body["mlx_cpu"][1] and "▼" not in body["mlx_cpu"][1]  # the control


def test_report_command_line_across_torch_versions(torch_results, capsys):
    from mlx_asv.commands import report as report_command

    args = ["--results", torch_results.results, "--ledger", torch_results.ledger,
            "--evidence", str(torch_results.root)]
    assert report_command.main(args + ["--torch-versions", "all", "--release", "v0.3.0"]) == 0
    out = capsys.readouterr().out
    assert "# MLX v0.3.0 across torch versions" in out
    assert report_command.main(args + ["--torch-versions", "2.2.2,2.13.0", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["torch_versions"] == ["2.2.2", "2.13.0"] and data["release"] == "v0.3.0"
    assert report_command.main(args + ["--torch", "2.7.1", "--release", "v0.3.0"]) == 0
    assert "**torch** 2.7.1 (this machine also has results of torch 2.2.2, 2.13.0:" in capsys.readouterr().out
    assert report_command.main(args) == 0  # the control, by default
    assert "**torch** 2.13.0 (this machine also has results of torch 2.2.2, 2.7.1:" in capsys.readouterr().out
    assert report_command.main(args + ["--torch-versions", "9.9.9"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


FAKE_ASV = '''#!{python}
"""A stand-in for asv run: writes one results file with samples for the
config's torch version (its matrix's MLX_ASV_TORCH), as asv would."""
import json, os, random, sys
argv = sys.argv[1:]
conf = json.load(open(argv[argv.index("--config") + 1]))
assert argv[2] == "run" and "--record-samples" in argv and "rounds=1" in argv
commit = open(argv[3].split(":", 1)[1]).read().split()[0]
torch = conf["matrix"]["env"]["MLX_ASV_TORCH"][0]
times = {times}
rng = random.Random(len(os.listdir(conf["results_dir"])) if os.path.isdir(conf["results_dir"]) else 0)
noisy = lambda t: [t * (1 + abs(rng.gauss(0, 0.003))) for _ in range(3)]
cases = ["'c%d'" % i for i in range(30)]
results = {{
    "ops.Softmax.time_op": [None, [["'dim=8x16 axis=0'"], ["'mlx_cpu'", "'torch_cpu'"]]] + [None] * 9
                           + [[noisy(times[torch][0] / 1e3), noisy(times[torch][1] / 1e3)]],
    "x.F.time_op": [None, [cases, ["'torch_cpu'"]]] + [None] * 9 + [[noisy(0.01) for _ in cases]],
}}
cols = ["result", "params"] + ["c%d" % i for i in range(9)] + ["samples"]
os.makedirs(os.path.join(conf["results_dir"], "fake"), exist_ok=True)
with open(os.path.join(conf["results_dir"], "fake", commit[:8] + "-torch" + torch + ".json"), "w") as f:
    json.dump({{"commit_hash": commit, "result_columns": cols, "results": results, "version": 2}}, f)
'''


def test_compare_session_through_a_fake_asv_gives_the_tables_verdicts(torch_results, capsys):
    """tools/torch_matrix.py --compare: per round and torch version one asv run
    of that version's narrowed config (the sides alternate), every process's
    samples kept in .asv/torch/<run>/rounds.json; the report decides from it."""
    from mlx_asv.report import render, torch_report
    from mlx_asv.report.sessions import Sessions

    fake = torch_results.root / "fake-asv"
    fake.write_text(FAKE_ASV.format(python=sys.executable, times=repr(TIMES_BY_TORCH)))
    fake.chmod(0o755)
    folder = torch_results.root / ".asv" / "torch" / "run"
    lines = []
    tm.compare("v0.3.0", ["2.2.2", "2.13.0"], "Softmax", rounds=3, folder=str(folder),
               repo=torch_results.ledger, asv=str(fake), log=lines.append)
    runs = [line.split(":")[0] for line in lines if line.startswith("round")]
    assert runs == ["round 1, torch 2.2.2", "round 1, torch 2.13.0", "round 2, torch 2.13.0",
                    "round 2, torch 2.2.2", "round 3, torch 2.2.2", "round 3, torch 2.13.0"]
    for v in ("2.2.2", "2.13.0"):
        side_conf = json.loads((folder / f"torch-{v}" / "asv.conf.json").read_text())
        assert side_conf["matrix"]["env"]["MLX_ASV_TORCH"] == [v]
        assert side_conf["results_dir"] == str(folder / f"torch-{v}" / "results")
        assert side_conf["env_dir"] == os.path.join(ROOT, ".asv/env")  # the matrix's environments
        assert all("{conf_dir}" not in c for c in side_conf["install_command"])
    saved = json.loads((folder / "rounds.json").read_text())
    commit = torch_results.commits["v0.3.0"]
    assert saved["commits"] == [f"{commit}@torch2.2.2", f"{commit}@torch2.13.0"] and saved["rounds"] == 3
    key = f"{SOFTMAX}('dim=8x16 axis=0', 'torch_cpu')"
    assert [len(saved["data"][key][s]) for s in saved["commits"]] == [3, 3]  # a sample list per process
    tr = torch_report.TorchReport(torch_results.results, versions="2.2.2,2.13.0", ledger_dir=torch_results.ledger,
                                  release="v0.3.0", sessions=Sessions(root=str(torch_results.root)))
    body = {r[1]: r[2:] for r in render.release_table(tr, tr.changes())[1]}
    assert body["torch_cpu"][1].startswith("**10.00 (-67%) ▼ ")  # a verdict, with its interval
    assert "▼" not in body["mlx_cpu"][1] and "▲" not in body["mlx_cpu"][1]
    # an unknown release: one line
    with pytest.raises(tm.MatrixError, match="not in the release ledger"):
        tm.compare("v9.9.9", ["2.2.2"], "x", repo=torch_results.ledger, asv=str(fake), log=lines.append)


def test_a_single_version_config_makes_the_matrix_environment_of_that_version():
    """--compare narrows the matrix to one version per side: the environment
    (its requirements, so its name and directory) must be the matrix's own."""
    base = asv_config.load_conf(tm.CONF)
    full = dict(tm.environments(asv_config.load_conf(tm.TORCH_CONF)))
    for v in full:
        assert tm.environments(tm.torch_config(base, [v])) == [(v, full[v])]


def test_an_environment_that_sets_the_torch_version_stops_in_one_line():
    """asv would put the matrix's torch versions over MLX_ASV_TORCH without a word."""
    from tools import asv_plugin

    argv = ["--config", "asv.torch.conf.json", "run", "v0.32.4^!"]
    lines = []
    with pytest.raises(SystemExit) as exc:
        asv_plugin.check_settings(argv, {"MLX_ASV_TORCH": "2.4.1"}, cwd=ROOT, log=lines.append)
    assert exc.value.code == 2 and len(lines) == 1
    assert "MLX_ASV_TORCH=2.2.2|2.7.1|2.13.0" in lines[0] and "tools/torch_matrix.py --write" in lines[0]
    asv_plugin.check_settings(argv, {}, cwd=ROOT, log=pytest.fail)
    asv_plugin.check_settings(["run", "v0.32.4^!"], {"MLX_ASV_TORCH": "2.4.1"}, cwd=ROOT, log=pytest.fail)


def test_asv_publish_draws_a_graph_per_torch_version(tmp_path):
    """asv's own site, from the default config's results and the torch
    matrix's: a graph parameter env-MLX_ASV_TORCH, one value per version."""
    import shutil

    from mlx_asv.envs import ledger

    for name in ("tools", "mlx_asv", "benchmarks"):
        shutil.copytree(os.path.join(ROOT, name), tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "data"))
    for name in ("asv.conf.json", "asv.torch.conf.json"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    built = {rel.tag: c for rel, c in ledger.ensure(repo=str(tmp_path / "ledger"), online=False, log=lambda m: None)}
    folder = tmp_path / "results" / "box"
    folder.mkdir(parents=True)
    (folder / "machine.json").write_text(json.dumps(MACHINE))
    for tag, torch, matrix in (("v0.32.3", "2.13.0", False), ("v0.32.4", "2.13.0", False),
                               ("v0.32.3", "2.2.2", True), ("v0.32.4", "2.2.2", True), ("v0.32.4", "2.7.1", True)):
        env, data = torch_results_file(built[tag], torch, matrix=matrix)
        data["params"] = dict(data["params"], **data["requirements"])  # as asv writes them
        (folder / f"{built[tag][:8]}-{env}.json").write_text(json.dumps(data))
    (tmp_path / "results" / "benchmarks.json").write_text(json.dumps({SOFTMAX: {
        "name": SOFTMAX, "type": "time", "unit": "seconds", "param_names": ["case", "backend"],
        "params": [["'dim=8x16 axis=0'"], ["'mlx_cpu'", "'torch_cpu'"]], "version": "v1"}, "version": 2}))
    proc = subprocess.run([sys.executable, "-m", "asv", "--config", "asv.torch.conf.json", "publish"], cwd=tmp_path,
                          env=dict(os.environ, MLX_ASV_OFFLINE="1"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    graphs = [os.path.relpath(os.path.join(d, f), tmp_path / "html" / "graphs")
              for d, _, files in os.walk(tmp_path / "html" / "graphs") for f in files if f == f"{SOFTMAX}.json"]
    torch_values = sorted(p.split("env-MLX_ASV_TORCH-")[1].split("/")[0] for p in graphs if "env-MLX_ASV_TORCH-" in p)
    assert torch_values == ["2.2.2", "2.7.1", "null"]  # null: the default config's pinned torch (param torch-2.13.0)
    numpy = {p.split("env-MLX_ASV_TORCH-")[1].split("/")[0]: p.split("numpy-")[1].split("/")[0]
             for p in graphs if "env-MLX_ASV_TORCH-" in p}
    assert numpy["2.2.2"] == "1.26.4" and numpy["2.7.1"] == "2.4.6"


def test_describe_says_per_version_what_it_installs_here_and_what_is_skipped(monkeypatch):
    monkeypatch.setattr(ti, "available", lambda extra=None, pip=None: HERE)
    monkeypatch.setattr(ti, "index_reachable", lambda url: (False, "offline"))
    lines = []
    tm.describe(["2.2.2", "2.13.0"], log=lines.append, environ={"MLX_ASV_FLAVOR": "cpu"})
    old, new = (next(line for line in lines if line.startswith(f"  torch {v}:")) for v in ("2.2.2", "2.13.0"))
    assert "numpy 1.26.4" in old and "refusing" in old and "models.py skipped (transformers 5.23.0 needs torch>=2.6" in old
    assert "numpy 2.4.6" in new and "torch 2.13.0+cpu: the CPU build" in new and "skipped" not in new


def test_compare_default_bench_is_the_regex_builders_and_selects_what_the_literal_did(monkeypatch):
    """--compare's default -b, now protocol.bench_regex(['torch_cpu']), selects exactly the ops.py
    cases the literal it replaced did, over every case of the reference benchmark list."""
    import itertools
    import re

    seen = {}
    monkeypatch.setattr(tm, "compare", lambda release, versions, bench, **kw: seen.setdefault("bench", bench))
    assert tm.main(["--compare", "v0.32.4", "--versions", "2.13.0"]) == 0
    with open(os.path.join(ROOT, "results-reference", "benchmarks.json"), encoding="utf-8") as f:
        listed = json.load(f)
    keys = [f"{name}({', '.join(combo)})" if b.get("params") else name
            for name, b in listed.items() if name != "version"
            for combo in itertools.product(*(b.get("params") or [[]]))]
    old = re.compile(r"^ops\.[^(]*\(.*'torch_cpu'\)$")
    new = re.compile(seen["bench"])
    chosen = [k for k in keys if new.search(k)]
    assert chosen == [k for k in keys if old.search(k)]
    assert chosen and all(k.startswith("ops.") and k.endswith("'torch_cpu')") for k in chosen)
