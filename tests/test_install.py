"""tools/install.py: platform x version -> requirement, and the no-wheel message."""

import subprocess
import sys
import time

import pytest

from tools import install

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
    ],
)
def test_detect_flavor(system, env, expected):
    assert install.detect_flavor(system=system, environ=env) == expected


def test_detect_flavor_linux_follows_the_nvidia_driver(monkeypatch):
    monkeypatch.setattr(install.os.path, "exists", lambda p: p == "/proc/driver/nvidia/version")
    assert install.detect_flavor(system="Linux", environ={}) == "cuda13"
    monkeypatch.setattr(install.os.path, "exists", lambda p: False)
    assert install.detect_flavor(system="Linux", environ={}) == "cpu"


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
    """Asks the real package index (as asv's install does): 0.22.0 has macOS wheels only."""
    (tmp_path / "MLX_VERSION").write_text("0.22.0\n")
    log = tmp_path / "failures.tsv"
    started = time.time()
    proc = subprocess.run(
        [sys.executable, install.__file__, "--build-dir", str(tmp_path), "--flavor", "cpu",
         "--failure-log", str(log)],
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
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    for version in ("0.26.3", "0.26.5", "0.26.3"):
        proc = subprocess.run([py, install.__file__, "--version", version, "--flavor", "cpu"],
                              capture_output=True, text=True)
        if proc.returncode != 0 and "nearest" not in proc.stderr and "import gives" not in proc.stderr:
            pytest.skip(f"package index unreachable: {proc.stderr.strip()[-200:]}")
        assert proc.returncode == 0, proc.stderr
        got = subprocess.run([py, "-c", "import mlx.core as mx; print(mx.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert got == version
