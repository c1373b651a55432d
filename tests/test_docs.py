"""The README and the docs/ pages link to each other without drift: every relative link points to
a file that exists and, where it names a section (``#anchor``), to a heading that exists there
(GitHub's anchors); every page in docs/ is linked from the README; the README's picture is a PNG.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # not in code blocks
    return {anchor(m[1]) for m in re.finditer(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return [u for u in LINK.findall(text) if not re.match(r"[a-z]+:", u)]


def test_anchor_follows_githubs_rule():
    assert anchor("Stage 1: `nas search`") == "stage-1-nas-search"
    assert anchor("Specs: `nas list`, `nas show`, `nas export`") == \
        "specs-nas-list-nas-show-nas-export"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for url in links(page):
        path, _, section = url.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{url}: no file {target.relative_to(ROOT)}")
        elif section and target.suffix == ".md" and section not in anchors(target):
            broken.append(f"{url}: no heading #{section} in {target.relative_to(ROOT)}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / u.partition("#")[0]).resolve() for u in links(ROOT / "README.md")}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_the_readme_shows_the_dashboard_screenshot():
    assert "](docs/dashboard.png)" in (ROOT / "README.md").read_text()
    assert (ROOT / "docs" / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
