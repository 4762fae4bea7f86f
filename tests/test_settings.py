"""Finding 3: the settings that change the numbers (the install flavour, MLX's
TF32) are part of each result's identity through asv's matrix, a caller's
environment that the matrix would silently override stops asv in one line, and
a config variant measures with another value (tools/config_variant.py)."""

import os
import shutil
import subprocess
import sys

import pytest

from tools import asv_plugin
from mlx_asv.envs import asv_config, config_variant

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = os.path.join(ROOT, "asv.conf.json")


def environments(conf_path):
    """asv's own environments of a config, as asv run would make them (nothing is created)."""
    from asv import config, environment

    conf = config.Config.load(conf_path)
    return list(environment.get_environments(conf, None, verbose=False))


# --------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------


def test_matrix_has_the_flavour_at_build_time_and_tf32_at_run_time():
    matrix = asv_config.load_conf(CONF)["matrix"]
    assert matrix["env"] == {"MLX_ASV_FLAVOR": ["auto"]}
    assert matrix["env_nobuild"] == {"MLX_ENABLE_TF32": ["1"]}
    (env,) = environments(CONF)
    # the results file name, the site's environment and the report's header carry both
    assert "MLX_ASV_FLAVORauto" in env.name and "MLX_ENABLE_TF321" in env.name
    assert env.env_vars == {"MLX_ASV_FLAVOR": "auto", "MLX_ENABLE_TF32": "1"}
    assert env.build_env_vars == {"MLX_ASV_FLAVOR": "auto"}  # install.py sees it


@pytest.fixture
def project(tmp_path):
    shutil.copy(CONF, tmp_path / "asv.conf.json")
    return tmp_path


def test_tf32_variant_shares_the_environment_directory_flavour_variant_does_not(project):
    (default,) = environments(str(project / "asv.conf.json"))
    tf32 = config_variant.write_variant({"MLX_ENABLE_TF32": "0"}, str(project / "asv.conf.json"))
    assert os.path.basename(tf32) == "asv.MLX_ENABLE_TF32-0.conf.json"
    (off,) = environments(tf32)
    assert off.env_vars["MLX_ENABLE_TF32"] == "0" and off.name != default.name
    assert off.dir_name == default.dir_name  # runtime only: no second install
    cuda = config_variant.write_variant({"MLX_ASV_FLAVOR": "cuda"}, str(project / "asv.conf.json"))
    (c12,) = environments(cuda)
    assert c12.build_env_vars == {"MLX_ASV_FLAVOR": "cuda"} and c12.dir_name != default.dir_name
    # everything else is the project's config
    base, var = asv_config.load_conf(str(project / "asv.conf.json")), asv_config.load_conf(tf32)
    var["matrix"]["env_nobuild"] = base["matrix"]["env_nobuild"]
    assert var == base


def test_variant_refuses_a_variable_outside_the_matrix(project, capsys):
    with pytest.raises(config_variant.VariantError, match="MLX_FOO is not a variable"):
        config_variant.variant(asv_config.load_conf(CONF), {"MLX_FOO": "1"})
    assert config_variant.main(["MLX_ENABLE_TF32"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --------------------------------------------------------------------------
# The plugin's stop
# --------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["run", "v0.32.4^!"],
    ["continuous", "v0.31.2", "v0.32.4"],
    ["--verbose", "run", "--python=same", "HEAD^!"],  # --python still takes the matrix
    ["find", "v0.30.0..v0.32.4", "ops.Sum.time_op"],
    ["setup"],
])
@pytest.mark.parametrize("var, value", [("MLX_ENABLE_TF32", "0"), ("MLX_ASV_FLAVOR", "cuda")])
def test_a_setting_the_matrix_would_override_stops_in_one_line(argv, var, value):
    lines = []
    with pytest.raises(SystemExit) as exc:
        asv_plugin.check_settings(argv, {var: value}, cwd=ROOT, log=lines.append)
    assert exc.value.code == 2
    assert len(lines) == 1 and "\n" not in lines[0]
    line = lines[0]
    assert f"your environment sets {var}={value}" in line and "asv.conf.json's matrix" in line
    variant = f"asv.{var}-{value}.conf.json"
    assert f"python tools/config_variant.py {var}={value} && asv --config {variant} " in line
    assert f"unset {var}" in line


@pytest.mark.parametrize("argv, environ", [
    (["run", "v0.32.4^!"], {}),
    (["run", "v0.32.4^!"], {"MLX_ENABLE_TF32": "1", "MLX_ASV_FLAVOR": "auto"}),  # the matrix's own
    (["run", "-E", "existing:same", "v0.32.4^!"], {"MLX_ENABLE_TF32": "0"}),  # existing ignores the matrix
    (["publish"], {"MLX_ENABLE_TF32": "0"}),  # runs nothing
    (["compare", "v0.31.2", "v0.32.4"], {"MLX_ENABLE_TF32": "0"}),
    (["-m", "pytest"], {"MLX_ENABLE_TF32": "0"}),  # not an asv command line
])
def test_no_stop_where_nothing_is_overridden(argv, environ):
    asv_plugin.check_settings(argv, environ, cwd=ROOT, log=pytest.fail)


def test_the_named_variant_passes(project):
    variant = config_variant.write_variant({"MLX_ENABLE_TF32": "0"}, str(project / "asv.conf.json"))
    argv = ["--config", os.path.basename(variant), "run", "v0.32.4^!"]
    asv_plugin.check_settings(argv, {"MLX_ENABLE_TF32": "0"}, cwd=str(project), log=pytest.fail)
    # ... and it is read, not asv.conf.json: another value stops
    assert "asv.MLX_ENABLE_TF32-0.conf.json's matrix sets MLX_ENABLE_TF32=0" in \
        asv_plugin.setting_override_message(argv, {"MLX_ENABLE_TF32": "1"}, cwd=str(project))


def test_real_asv_run_with_tf32_off_stops_in_one_line():
    """asv itself, in the repository root: the plugin stops it before anything runs.
    The release is one the ledger lacks, so that if this check ever went, asv
    would stop at the release check (another line), not build an environment."""
    asv = os.path.join(os.path.dirname(sys.executable), "asv")
    cmd = [asv] if os.path.exists(asv) else [sys.executable, "-m", "asv"]
    env = dict(os.environ, MLX_ASV_OFFLINE="1", MLX_ENABLE_TF32="0")
    env.pop("MLX_ASV_FLAVOR", None)
    proc = subprocess.run(cmd + ["run", "v9.9.9^!", "--dry-run"], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1, output
    assert "MLX_ENABLE_TF32=0" in lines[0] and "tools/config_variant.py" in lines[0]
