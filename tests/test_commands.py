"""The ``mlx-asv`` command: each subcommand's module has the main it runs, and
the calibration study is a subcommand as well as a file to run."""

import importlib
import os
import subprocess
import sys

import pytest

from mlx_asv import commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name", sorted(commands.SUBCOMMANDS))
def test_every_subcommand_has_a_main(name):
    module = importlib.import_module(commands.SUBCOMMANDS[name][0])
    assert callable(module.main)


def test_unknown_subcommand_is_one_line_and_exit_2(capsys):
    assert commands.main(["no-such"]) == 2
    assert capsys.readouterr().err.strip() == "mlx-asv: no subcommand 'no-such'; mlx-asv help lists them"


def help_text(*cmd):
    out = subprocess.run([sys.executable, *cmd, "--help"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, COLUMNS="200"))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_calibrate_is_a_subcommand_and_still_a_file():
    sub = help_text("-m", "mlx_asv.commands", "calibrate")
    path = help_text("studies/calibrate.py")
    assert sub.startswith("usage: mlx-asv calibrate ") and path.startswith("usage: calibrate.py ")
    # past the usage lines (wrapped after the program name), the same parser
    assert sub.split("\n\n", 1)[1] == path.split("\n\n", 1)[1]
    assert "--localize" in sub and "--summary" in sub
