"""Finding 11: a measured time in a module docstring of benchmarks/ or tools/
names the command that produces it (in its paragraph or the one beside it, e.g.
a ``with::`` block), so that it can be reproduced or found stale."""

import ast
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "*.py")) + glob.glob(os.path.join(ROOT, "tools", "*.py"))
               + glob.glob(os.path.join(ROOT, "mlx_asv", "**", "*.py"), recursive=True)
               + glob.glob(os.path.join(ROOT, "studies", "*.py")))
# a number with a unit of time: "304 s", "~13 minutes", "5 min 51 s", "2.2 s"
TIME = re.compile(r"\d+(\.\d+)?\s*(ms|s|min|minutes?|hours?)\b")
COMMAND = re.compile(r"\basv (run|continuous|find)\b|\bpython3? \S+\.py\b")
# settings, not measurements: asv attributes and tools' options
SETTING = re.compile(r"``?timeout``?\s*\(per\s+case,\s*\d+\s*s\)|``timeout``\s*=\s*\d+")


def docstring_paragraphs(path):
    with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read()), clean=False) or ""
    return [p for p in re.split(r"\n\s*\n", doc) if p.strip()]


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_measured_times_name_their_command(path):
    paragraphs = docstring_paragraphs(path)
    for i, par in enumerate(paragraphs):
        if not TIME.search(SETTING.sub("", par)):
            continue
        near = " ".join(paragraphs[max(i - 1, 0):i + 2])
        assert COMMAND.search(near), (
            f"{os.path.relpath(path, ROOT)}: a time without the command that measured it: "
            f"{' '.join(par.split())[:200]}")


def test_the_check_catches_the_old_ops_figure(tmp_path):
    old = tmp_path / "old.py"
    old.write_text('"""Such families set asv\'s settings, so that the whole file runs in ~13 minutes\n'
                   'per release on mlx_cpu + torch_cpu (measured per case on MLX 0.32.4)."""\n')
    with pytest.raises(AssertionError, match="a time without the command"):
        test_measured_times_name_their_command(str(old))
