"""The README's and docs/'s links between pages resolve: every relative link
names a file of the repository, and every anchor (``page.md#a-heading``,
``#a-heading``) names a heading of that page, as GitHub writes its anchors."""

import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(path):
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation
    but hyphens and underscores dropped, spaces to hyphens."""
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    out = set()
    for heading in re.findall(r"^#+\s+(.*?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        out.add(slug)
    return out


def broken_links(path):
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(dest):
            broken.append(f"{target} (no file {os.path.relpath(dest, ROOT)})")
        elif anchor and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {os.path.relpath(dest, ROOT)})")
    return broken


@pytest.mark.parametrize("path", DOCS, ids=lambda p: os.path.relpath(p, ROOT))
def test_links_resolve(path):
    assert not broken_links(path), f"{os.path.relpath(path, ROOT)}: broken links: {broken_links(path)}"


def test_the_index_lists_every_page():
    with open(os.path.join(ROOT, "docs", "index.md"), encoding="utf-8") as f:
        listed = set(re.findall(r"\]\(([\w-]+\.md)\)", f.read()))
    pages = {os.path.basename(p) for p in DOCS[1:]} - {"index.md"}
    assert pages <= listed, f"docs/index.md lacks {sorted(pages - listed)}"


def test_the_readme_is_a_newcomers_page():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    assert text.count("\n") <= 300
    assert "python3 tools/quickstart.py main" in text and "python3 tools/quickstart.py test" in text
    assert "(docs/index.md)" in text


def test_the_check_catches_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Settings that change the numbers\n\n[x](b.md) [y](#nowhere)\n"
                                   "[z](#settings-that-change-the-numbers) [w](https://example.org)\n")
    broken = broken_links(str(tmp_path / "a.md"))
    assert len(broken) == 2 and "b.md" in broken[0] and "#nowhere" in broken[1]
