"""The README stays a first page, and no link in it or in docs/ points nowhere.

Links are checked the way GitHub renders them: a relative target must exist in the
tree, and a #fragment must name a heading of the target file (GitHub's slugs).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 300

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(_CODE_SPAN.sub("``", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*_~]|<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose_lines(path.read_text()):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[str]:
    """Every relative link target of a Markdown file (web and mail links left out)."""
    targets = []
    for line in _prose_lines(path.read_text()):
        for target in _LINK.findall(line):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                targets.append(target)
    return targets


def broken_links(path: Path) -> list[str]:
    """The targets of `path` that name no file, or no heading in the file they name."""
    broken = []
    for target in links(path):
        name, _, fragment = target.partition("#")
        dest = (path.parent / name).resolve() if name else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_is_a_first_page() -> None:
    lines = README.read_text().count("\n")
    assert lines < MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_docs_have_an_index_linking_every_page() -> None:
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in links(index)}
    pages = {p.resolve() for p in PAGES if p.parent == index.parent and p != index}
    assert pages - linked == set()


def test_slugs_and_links_follow_github(tmp_path: Path) -> None:
    assert slug("2026-11-29 06:31 (commit 1ef2aac): CPU") == "2026-11-29-0631-commit-1ef2aac-cpu"
    assert slug("The `etcdhcpctl` tool, *briefly*") == "the-etcdhcpctl-tool-briefly"
    (tmp_path / "other.md").write_text("## Far away\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# A\n\n```\n# not a heading [x](nowhere.md)\n```\n\n# A\n"
        "[y](#a-1) `[z](gone.md)` [w](#nope) ![p](other.md#far-away) [q](other.md#near)\n"
        "[web](https://example.net/x.md) [gone](gone.md)\n"
    )
    assert anchors(page) == {"a", "a-1"}
    assert links(page) == ["#a-1", "#nope", "other.md#far-away", "other.md#near", "gone.md"]
    assert broken_links(page) == [
        "#nope: no heading #nope in page.md",
        "other.md#near: no heading #near in other.md",
        "gone.md: no such file",
    ]
