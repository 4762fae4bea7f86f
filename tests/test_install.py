"""tools/install.py: platform x version -> requirement, and the no-wheel message."""

import subprocess
import sys
import time

import pytest

from conftest import make_venv
from mlx_asv.envs import install

# (flavour, version) -> (requirement, distributions whose wheels must exist)
MAPPING = [
    ("cpu", "0.2.0", "mlx==0.2.0", ["mlx"]),
    ("cpu", "0.21.1", "mlx==0.21.1", ["mlx"]),
    ("cpu", "0.26.3", "mlx==0.26.3", ["mlx"]),
    ("cpu", "0.26.5", "mlx[cpu]==0.26.5", ["mlx", "mlx-cpu"]),
    ("cpu", "0.32.4", "mlx[cpu]==0.32.4", ["mlx", "mlx-cpu"]),
    ("cuda13", "0.30.1", "mlx[cuda13]==0.30.1", ["mlx", "mlx-cuda-13"]),
    ("cuda13", "0.32.4", "mlx[cuda13]==0.32.4", ["mlx", "mlx-cuda-13"]),
    ("cuda", "0.27.1", "mlx[cuda]==0.27.1", ["mlx", "mlx-cuda"]),
    ("cuda", "0.30.0", "mlx[cuda]==0.30.0", ["mlx", "mlx-cuda"]),
    ("cuda", "0.30.1", "mlx[cuda]==0.30.1", ["mlx", "mlx-cuda-12"]),
    ("metal", "0.21.1", "mlx==0.21.1", ["mlx"]),
    ("metal", "0.32.4", "mlx==0.32.4", ["mlx"]),
    ("plain", "0.32.4", "mlx==0.32.4", ["mlx"]),
]


@pytest.mark.parametrize("flavor,version,req,dists", MAPPING)
def test_requirement_table(flavor, version, req, dists):
    assert install.requirement(version, flavor) == (req, dists)


@pytest.mark.parametrize(
    "system,env,expected",
    [
        ("Darwin", {}, "metal"),
        ("Windows", {}, "plain"),
        ("Linux", {"MLX_ASV_FLAVOR": "cuda"}, "cuda"),
        ("Darwin", {"MLX_ASV_FLAVOR": "CPU"}, "cpu"),
        # asv.conf.json's matrix sets MLX_ASV_FLAVOR=auto: detect
        ("Darwin", {"MLX_ASV_FLAVOR": "auto"}, "metal"),
        ("Windows", {"MLX_ASV_FLAVOR": "AUTO"}, "plain"),
    ],
)
def test_detect_flavor(system, env, expected):
    assert install.detect_flavor(system=system, environ=env) == expected


def test_detect_flavor_linux_follows_the_nvidia_driver(monkeypatch):
    monkeypatch.setattr(install.os.path, "exists", lambda p: p == "/proc/driver/nvidia/version")
    assert install.detect_flavor(system="Linux", environ={}) == "cuda13"
    monkeypatch.setattr(install.os.path, "exists", lambda p: False)
    assert install.detect_flavor(system="Linux", environ={}) == "cpu"
    assert install.detect_flavor(system="Linux", environ={"MLX_ASV_FLAVOR": "auto"}) == "cpu"


def test_auto_installs_the_detected_flavour(monkeypatch):
    """Finding 3: "auto" (the matrix value) is never passed on as a flavour: the
    detected one is what gets installed."""
    monkeypatch.setenv("MLX_ASV_FLAVOR", "auto")
    monkeypatch.setattr(install, "detect_flavor", lambda: "cpu")
    monkeypatch.setattr(install, "check_wheels", lambda *a, **k: None)
    assert install.install("0.32.4", dry_run=True, log=lambda m: None) == "mlx[cpu]==0.32.4"
    assert install.install("0.32.4", flavor="auto", dry_run=True, log=lambda m: None) == "mlx[cpu]==0.32.4"


def test_bad_flavor_names_the_choices():
    with pytest.raises(install.InstallError, match="MLX_ASV_FLAVOR='rocm' is not one of cpu, cuda13"):
        install.detect_flavor(system="Linux", environ={"MLX_ASV_FLAVOR": "rocm"})


LINUX_WHEELS = {
    "mlx": ["0.2.0", "0.21.1", "0.25.2", "0.26.1", "0.26.3", "0.26.5", "0.32.4"],
    "mlx-cpu": ["0.26.5", "0.32.4"],
}


def test_no_wheel_message_names_version_platform_and_nearest():
    with pytest.raises(install.InstallError) as err:
        install.check_wheels("0.22.0", "cpu", ["mlx"], lookup=LINUX_WHEELS.get)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("MLX 0.22.0: no wheel for ")
    assert "(cpu)" in msg and f"cp{sys.version_info.major}{sys.version_info.minor}" in msg
    assert msg.endswith("nearest with wheels: 0.21.1, 0.25.2")


def test_nearest_uses_versions_that_have_every_needed_wheel():
    with pytest.raises(install.InstallError, match="nearest with wheels: 0.26.5$"):
        install.check_wheels("0.26.4", "cpu", ["mlx", "mlx-cpu"], lookup=LINUX_WHEELS.get)


def test_existing_wheel_passes_and_unknown_availability_defers_to_pip():
    install.check_wheels("0.32.4", "cpu", ["mlx", "mlx-cpu"], lookup=LINUX_WHEELS.get)
    install.check_wheels("9.9.9", "cpu", ["mlx"], lookup=lambda d: None)


def test_nearest():
    assert install.nearest("0.22.0", ["0.2.0", "0.21.1", "0.25.2"]) == ["0.21.1", "0.25.2"]
    assert install.nearest("0.0.2", ["0.2.0"]) == ["0.2.0"]
    assert install.nearest("1.0.0", []) == []


def test_missing_version_file_is_one_clear_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, install.__file__, "--build-dir", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "MLX_VERSION not found" in proc.stderr and "tools/ledger.py" in proc.stderr


def test_real_release_without_wheel_fails_fast_with_one_line(tmp_path):
    """Asks the real package index (as asv's install does): 0.22.0 has macOS wheels only.

    ``--no-source``: where the ledger names an MLX repository to build from
    (a developer's machine), install.py would build 0.22.0 instead (or take
    its cached wheel) and install it into this very environment, the one
    the tests run in."""
    (tmp_path / "MLX_VERSION").write_text("0.22.0\n")
    log = tmp_path / "failures.tsv"
    started = time.time()
    proc = subprocess.run(
        [sys.executable, install.__file__, "--build-dir", str(tmp_path), "--flavor", "cpu",
         "--failure-log", str(log), "--no-source"],
        capture_output=True, text=True,
    )
    elapsed = time.time() - started
    if "nearest" not in proc.stderr:
        pytest.skip(f"package index unreachable: {proc.stderr.strip()}")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "MLX 0.22.0: no wheel for linux" in lines[0] or sys.platform != "linux"
    assert "nearest with wheels: 0.21.1, 0.25.2" in lines[0]
    assert log.read_text().startswith("0.22.0\t")
    print(f"no-wheel answer in {elapsed:.1f} s")


@pytest.mark.skipif(sys.version_info[:2] != (3, 11) or sys.platform != "linux",
                    reason="MLX 0.26.3 has Linux wheels for CPython 3.11 only")
def test_switching_between_bundled_and_split_wheels(tmp_path):
    """0.26.3 bundles its library in `mlx`; 0.26.5 moved it to `mlx-cpu`. An in-place
    upgrade once let pip delete the new library: each switch must leave MLX importable."""
    py = make_venv(tmp_path / "venv")
    for version in ("0.26.3", "0.26.5", "0.26.3"):
        proc = subprocess.run([py, install.__file__, "--version", version, "--flavor", "cpu"],
                              capture_output=True, text=True)
        if proc.returncode != 0 and "nearest" not in proc.stderr and "import gives" not in proc.stderr:
            pytest.skip(f"package index unreachable: {proc.stderr.strip()[-200:]}")
        assert proc.returncode == 0, proc.stderr
        got = subprocess.run([py, "-c", "import mlx.core as mx; print(mx.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert got == version


# --------------------------------------------------------------------------
# Finding 9: a CUDA flavour for a release without CUDA wheels fails, not falls back
# --------------------------------------------------------------------------


class FakePip:
    """Stands in for pip and for the import check: no network, no install.

    ``index`` answers as pip does offline (exit 1: availability unknown), so only
    the release check can stop a CUDA flavour; ``installs`` are what pip then
    leaves installed."""

    def __init__(self, installs, version):
        self.installed = set()
        self.installs = installs
        self.version = version
        self.calls = []

    def pip(self, *args, capture=True):
        self.calls.append(args[0])
        out, rc = "", 0
        if args[0] == "index":
            return subprocess.CompletedProcess(args, 1, "", "ERROR: network is unreachable")
        if args[0] == "install":
            self.installed = set(self.installs)
        elif args[0] == "uninstall":
            self.installed -= set(args[2:])
        elif args[0] == "list":
            out = "".join(f"{d}==0\n" for d in sorted(self.installed))
        return subprocess.CompletedProcess(args, rc, out, "")

    def run(self, cmd, **kw):  # the import check: MLX imports, at the right version
        if "dirname" in cmd[-1]:  # where the package lives (install.py's build marker goes there)
            import tempfile

            return subprocess.CompletedProcess(cmd, 0, tempfile.mkdtemp() + "\n", "")
        return subprocess.CompletedProcess(cmd, 0, self.version + "\n", "")


@pytest.mark.parametrize("flavor,version,first", [
    ("cuda13", "0.21.1", "0.30.1"),
    ("cuda13", "0.30.0", "0.30.1"),
    ("cuda", "0.26.5", "0.27.1"),
    ("cuda", "0.2.0", "0.27.1"),
])
def test_cuda_flavour_before_its_first_release_fails_before_installing(monkeypatch, flavor, version, first):
    fake = FakePip(["mlx"], version)  # what pip would do: drop the extra, install a CPU-only MLX
    monkeypatch.setattr(install, "_pip", fake.pip)
    monkeypatch.setattr(install.subprocess, "run", fake.run)
    with pytest.raises(install.InstallError) as err:
        install.install(version, flavor=flavor, log=lambda m: None)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"MLX {version}: flavour {flavor} ")
    assert f"before MLX {first}" in msg
    assert "install" not in fake.calls and "uninstall" not in fake.calls


@pytest.mark.parametrize("flavor,version", [("cuda13", "0.30.1"), ("cuda", "0.27.1"), ("cuda", "0.30.1")])
def test_first_cuda_release_passes_the_release_check(flavor, version):
    install.check_flavor_release(version, flavor)


@pytest.mark.parametrize("flavor,version,companion", [
    ("cuda13", "0.32.4", "mlx-cuda-13"),
    ("cuda", "0.29.0", "mlx-cuda"),
    ("cuda", "0.32.4", "mlx-cuda-12"),
])
def test_cuda_install_without_its_companion_fails(monkeypatch, flavor, version, companion):
    fake = FakePip(["mlx"], version)
    monkeypatch.setattr(install, "_pip", fake.pip)
    monkeypatch.setattr(install.subprocess, "run", fake.run)
    with pytest.raises(install.InstallError) as err:
        install.install(version, flavor=flavor, log=lambda m: None)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"MLX {version}: installed ") and f"but not {companion}" in msg
    # with the companion installed, the same install succeeds
    fake = FakePip(["mlx", companion], version)
    monkeypatch.setattr(install, "_pip", fake.pip)
    monkeypatch.setattr(install.subprocess, "run", fake.run)
    assert install.install(version, flavor=flavor, log=lambda m: None).startswith("mlx[cuda")


def test_cpu_flavour_needs_no_companion(monkeypatch):
    fake = FakePip(["mlx"], "0.21.1")
    monkeypatch.setattr(install, "_pip", fake.pip)
    monkeypatch.setattr(install.subprocess, "run", fake.run)
    assert install.install("0.21.1", flavor="cpu", log=lambda m: None) == "mlx==0.21.1"


def test_cuda_refusal_is_one_line_from_the_command_line(tmp_path):
    """As asv calls it: one line on stderr, exit 1, the reason in the failure log;
    no network needed (the refusal comes before any pip call)."""
    (tmp_path / "MLX_VERSION").write_text("0.21.1\n")
    log = tmp_path / "failures.tsv"
    proc = subprocess.run(
        [sys.executable, install.__file__, "--build-dir", str(tmp_path), "--flavor", "cuda13",
         "--failure-log", str(log)], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "flavour cuda13 has no wheels before MLX 0.30.1" in lines[0]
    assert "0.21.1" in log.read_text()


# --------------------------------------------------------------------------
# Installing what is already installed changes nothing: kept, not reinstalled
# --------------------------------------------------------------------------


class Installed:
    """An environment's MLX as install.py sees it: its package folder (where
    the build marker goes), the version mlx.core imports at (``after`` once pip
    installed something), the distributions pip lists, and pip's calls."""

    def __init__(self, monkeypatch, folder, version, after=None, dists=("mlx", "mlx-cpu")):
        self.version, self.after, self.dists, self.calls = version, after or version, set(dists), []
        monkeypatch.setattr(install, "_package_dir", lambda: str(folder))
        monkeypatch.setattr(install, "_import_version", lambda: self.version)
        monkeypatch.setattr(install, "check_wheels", lambda *a, **k: None)
        monkeypatch.setattr(install, "_pip", self.pip)
        monkeypatch.setattr(install.subprocess, "run", self.run)

    def pip(self, *args, capture=True):
        self.calls.append(args[0])
        if args[0] == "install":
            self.version = self.after
        out = "".join(f"{d}==0\n" for d in sorted(self.dists)) if args[0] == "list" else ""
        return subprocess.CompletedProcess(args, 0, out, "")

    def run(self, cmd, **kw):  # install()'s own import check
        return subprocess.CompletedProcess(cmd, 0, self.version + "\n", "")


def test_a_release_already_installed_is_kept(tmp_path, monkeypatch):
    env = Installed(monkeypatch, tmp_path, "0.32.4")
    install.write_build_marker({"kind": "wheel", "version": "0.32.4", "requirement": "mlx[cpu]==0.32.4",
                                "flavor": "cpu"}, folder=str(tmp_path))
    logs = []
    assert install.install("0.32.4", flavor="cpu", log=logs.append) == "mlx[cpu]==0.32.4"
    assert "install" not in env.calls and "uninstall" not in env.calls
    assert logs and logs[0].startswith("kept mlx[cpu]==0.32.4")


@pytest.mark.parametrize("marker,imports,why", [
    (None, "0.32.4", "no marker: not installed by install.py"),
    ({"kind": "wheel", "version": "0.32.3", "requirement": "mlx[cpu]==0.32.3", "flavor": "cpu"}, "0.32.3",
     "another release"),
    ({"kind": "wheel", "version": "0.32.4", "requirement": "mlx[cpu]==0.32.4", "flavor": "cpu"}, "0.32.3",
     "pip changed MLX after the marker was written"),
    ({"kind": "wheel", "version": "0.32.4", "requirement": "candidate mlx-0.32.4-cp311-cp311-linux_x86_64.whl",
      "sha256": ["0" * 64]}, "0.32.4", "a candidate's wheel of the same version"),
    ({"kind": "source", "version": "0.32.4", "commit": "c" * 40}, "0.32.4", "a source build of the same version"),
])
def test_anything_else_is_installed_again(tmp_path, monkeypatch, marker, imports, why):
    env = Installed(monkeypatch, tmp_path, imports, after="0.32.4")
    if marker:
        install.write_build_marker(marker, folder=str(tmp_path))
    install.install("0.32.4", flavor="cpu", log=lambda m: None)
    assert "uninstall" in env.calls and "install" in env.calls, why
    assert install.installed_build(str(tmp_path))["requirement"] == "mlx[cpu]==0.32.4"


def test_a_cuda_release_without_its_companion_is_installed_again(tmp_path, monkeypatch):
    env = Installed(monkeypatch, tmp_path, "0.32.4", dists=("mlx",))
    install.write_build_marker({"kind": "wheel", "version": "0.32.4", "requirement": "mlx[cuda13]==0.32.4",
                                "flavor": "cuda13"}, folder=str(tmp_path))
    with pytest.raises(install.InstallError, match="but not mlx-cuda-13"):
        install.install("0.32.4", flavor="cuda13", log=lambda m: None)
    assert "install" in env.calls


def test_a_candidate_wheel_is_kept_only_while_its_file_is_the_same(tmp_path, monkeypatch):
    build = tmp_path / "build"
    build.mkdir()
    name = "mlx-0.2.1.dev1-py3-none-any.whl"
    (build / name).write_bytes(b"first build")
    env = Installed(monkeypatch, tmp_path, "0.2.1.dev1")
    install.install_wheels("0.2.1.dev1", str(build), [name], log=lambda m: None)
    assert env.calls.count("install") == 1
    install.install_wheels("0.2.1.dev1", str(build), [name], log=lambda m: None)
    assert env.calls.count("install") == 1  # the same file: kept
    (build / name).write_bytes(b"second build, same name")
    install.install_wheels("0.2.1.dev1", str(build), [name], log=lambda m: None)
    assert env.calls.count("install") == 2  # another file of the same name: installed
