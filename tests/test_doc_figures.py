"""Finding 11: a measured figure names the command that produces it, so that
it can be reproduced or found stale.

- A measured time in a module docstring of benchmarks/ or tools/ names its
  command in its paragraph or the one beside it (e.g. a ``with::`` block).
- A measured figure in README.md or a page of docs/ (a time, a ratio such as
  ``3.34x``, a percentage) names its command in its paragraph or the one
  beside it; in a table, each row with a figure names it in the row itself or
  in the paragraph just before or after the table (a table's rows do not vouch
  for each other)."""

import ast
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "*.py")) + glob.glob(os.path.join(ROOT, "tools", "*.py"))
               + glob.glob(os.path.join(ROOT, "mlx_asv", "**", "*.py"), recursive=True)
               + glob.glob(os.path.join(ROOT, "studies", "*.py")))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
# a number with a unit of time: "304 s", "~13 minutes", "5 min 51 s", "2.2 s"
TIME = re.compile(r"\d+(\.\d+)?\s*(ms|s|min|minutes?|hours?)\b")
# in the README and docs/, also a ratio ("3.34x", "1.415x") or a percentage ("0.33%")
FIGURE = re.compile(TIME.pattern + r"|\d+(\.\d+)?x\b|\d+(\.\d+)?%")
# a command: asv's, a file run by python, or a module run as ``python -m`` (how the GPU harness and
# the studies run, from the repository root, on a python that lacks the package)
COMMAND = re.compile(r"\basv (run|continuous|find)\b|\bpython3? \S+\.py\b|\bpython3?(\.\d+)? -m \w[\w.]*")
# the docs also run the GPU harness as a shell script
DOC_COMMAND = re.compile(COMMAND.pattern + r"|\bbash \S+\.sh\b")
# settings, not measurements: asv attributes and tools' options
SETTING = re.compile(r"``?timeout``?\s*\(per\s+case,\s*\d+\s*s\)|``timeout``\s*=\s*\d+|\(default\s+\d+\s*s\)")


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


def doc_units(text):
    """(unit, the text that may name its command): a paragraph with its
    neighbours, or a table row with the paragraphs around its table."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    for i, par in enumerate(paragraphs):
        around = [paragraphs[i - 1] if i else "", paragraphs[i + 1] if i + 1 < len(paragraphs) else ""]
        lines = par.strip().split("\n")
        if all(line.lstrip().startswith("|") for line in lines):
            for row in lines:
                yield row, [row] + around
        else:
            yield par, [par] + around


@pytest.mark.parametrize("path", DOCS, ids=lambda p: os.path.relpath(p, ROOT))
def test_measured_figures_in_the_docs_name_their_command(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for unit, context in doc_units(text):
        if not FIGURE.search(SETTING.sub("", unit)):
            continue
        assert DOC_COMMAND.search(" ".join(context)), (
            f"{os.path.relpath(path, ROOT)}: a figure without the command that measured it: "
            f"{' '.join(unit.split())[:200]}")


def test_every_docs_page_is_checked():
    assert os.path.join(ROOT, "README.md") in DOCS
    pages = {os.path.basename(p) for p in DOCS[1:]}
    assert {"index.md", "measured.md", "calibration.md", "gpu.md"} <= pages


def test_the_check_catches_the_old_ops_figure(tmp_path):
    old = tmp_path / "old.py"
    old.write_text('"""Such families set asv\'s settings, so that the whole file runs in ~13 minutes\n'
                   'per release on mlx_cpu + torch_cpu (measured per case on MLX 0.32.4)."""\n')
    with pytest.raises(AssertionError, match="a time without the command"):
        test_measured_times_name_their_command(str(old))


def test_the_docs_check_catches_a_figure_without_its_command(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\nA gate took 14.5 min here.\n\nAn unrelated paragraph.\n")
    with pytest.raises(AssertionError, match="a figure without the command"):
        test_measured_figures_in_the_docs_name_their_command(str(page))
    page.write_text("# A page\n\nThe prior's fit made A/A false alarms 0.33% of the comparisons.\n")
    with pytest.raises(AssertionError, match="a figure without the command"):
        test_measured_figures_in_the_docs_name_their_command(str(page))
    page.write_text("# A page\n\nSoftmax got 3.4x slower.\n")
    with pytest.raises(AssertionError, match="a figure without the command"):
        test_measured_figures_in_the_docs_name_their_command(str(page))
    # a command in the next paragraph ties it; one in a paragraph further away does not
    page.write_text("# A page\n\nA gate took 14.5 min here\n\n(`python studies/calibrate.py --runs 5`).\n")
    test_measured_figures_in_the_docs_name_their_command(str(page))
    page.write_text("# A page\n\nA gate took 14.5 min here.\n\nOther text.\n\n`python studies/calibrate.py`\n")
    with pytest.raises(AssertionError, match="14.5 min"):
        test_measured_figures_in_the_docs_name_their_command(str(page))


def test_the_docs_check_reads_a_table_row_by_row(tmp_path):
    page = tmp_path / "table.md"
    rows = ("| what | command | figure |\n|---|---|---|\n"
            "| a gate | `python tools/gate.py v0.32.3 v0.32.4` | 14.5 min |\n")
    page.write_text("# Measured\n\nOn this machine:\n\n" + rows)
    test_measured_figures_in_the_docs_name_their_command(str(page))
    page.write_text("# Measured\n\nOn this machine:\n\n" + rows + "| a build | by hand | 224 s |\n")
    with pytest.raises(AssertionError, match="224 s"):
        test_measured_figures_in_the_docs_name_their_command(str(page))
    # the paragraph that leads the table may name the command for all its rows
    page.write_text("# Measured\n\n`python studies/calibrate.py --summary`:\n\n| row | 0.33% |\n| row | 57% |\n")
    test_measured_figures_in_the_docs_name_their_command(str(page))


def test_a_module_run_names_a_command_and_a_default_is_no_figure(tmp_path):
    mod = tmp_path / "mod.py"
    mod.write_text('"""A run took 13 s here.\n\n    python3 -m studies.launch_cost --repeat 2\n"""\n')
    test_measured_times_name_their_command(str(mod))  # the module form names the command
    mod.write_text('"""A run took 13 s here.\n\n    python3 -m\n"""\n')
    with pytest.raises(AssertionError, match="a time without the command"):
        test_measured_times_name_their_command(str(mod))  # "-m" without a module names nothing
    mod.write_text('"""``--budget`` (default 540 s) bounds the whole run."""\n')
    test_measured_times_name_their_command(str(mod))  # an option's default is a setting
    mod.write_text('"""``--budget`` (default 540 s) bounds the whole run, which took 300 s."""\n')
    with pytest.raises(AssertionError, match="a time without the command"):
        test_measured_times_name_their_command(str(mod))
