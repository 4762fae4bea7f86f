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

from tools import torch_install as ti
from tools import torch_matrix as tm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------
# The configs
# --------------------------------------------------------------------------


def test_default_config_still_pins_one_torch_installed_by_asv():
    base = tm.load_conf(tm.CONF)
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
    base, torch = tm.load_conf(tm.CONF), tm.load_conf(tm.TORCH_CONF)
    for field in ("repo", "benchmark_dir", "env_dir", "results_dir", "html_dir", "plugins", "project"):
        assert torch[field] == base[field], field
    assert torch["install_command"][0].startswith("python {conf_dir}/tools/torch_install.py")
    assert torch["install_command"][1:] == base["install_command"]
    assert "torch" not in torch["matrix"]["req"]


def test_one_environment_per_torch_version_with_its_own_numpy():
    envs = tm.environments(tm.torch_config(tm.load_conf(tm.CONF), ["2.2.2", "2.7.1", "2.13.0"]))
    assert [t for t, _ in envs] == ["2.2.2", "2.7.1", "2.13.0"]
    numpy = {t: r["numpy"] for t, r in envs}
    assert numpy == {"2.2.2": "1.26.4", "2.7.1": "2.4.6", "2.13.0": "2.4.6"}
    assert all(r["transformers"] == "5.23.0" and r["asv_runner"] == "0.3.2" for _, r in envs)


def test_new_versions_only_add_no_pins_and_no_excludes():
    conf = tm.torch_config(tm.load_conf(tm.CONF), ["2.7.1", "2.13.0"])
    assert conf["matrix"]["req"]["numpy"] == ["2.4.6"]
    assert "exclude" not in conf
    assert [t for t, _ in tm.environments(conf)] == ["2.7.1", "2.13.0"]


def test_environment_names_carry_the_torch_version():
    from asv import environment

    names = set()
    for torch, reqs in tm.environments(tm.load_conf(tm.TORCH_CONF)):
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
    path.write_text(tm.render(tm.torch_config(tm.load_conf(tm.CONF), ["2.7.1"])))
    assert tm.stale(str(path)) is None
    data = tm.load_conf(str(path))
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
        proc = subprocess.run([py, ti.__file__, "--failure-log", str(tmp_path / "results" / "failures.tsv")],
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
