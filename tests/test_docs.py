"""The documentation under docs/ stands on its own: every docs/ anchor cited in the repository is a real heading, and
nothing cites the background documents that are not part of the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# A link or reference to a docs page with an anchor: ``docs/data.md#pitfalls``, ``(data.md#pitfalls)`` inside docs/,
# ``../../docs/data.md#pitfalls`` from an env card.
ANCHORED = re.compile(r"(?:docs/|\()([a-z_]+\.md)#([\w\-]+)")
IN_PAGE = re.compile(r"\]\(#([\w\-]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(page: Path) -> set[str]:
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#+ (.*)$", page.read_text(), re.M)}


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in out.split():
        path = REPO / name
        if path.suffix in {".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".cfg"} and path.is_file():
            files.append(path)
    return files


def test_every_docs_anchor_is_a_heading() -> None:
    if not DOCS.is_dir():
        pytest.skip("no docs/ folder")
    anchors = {page.name: headings(page) for page in DOCS.glob("*.md")}
    missing = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for page, anchor in ANCHORED.findall(text):
            if page in anchors and anchor not in anchors[page]:
                missing.append(f"{path.relative_to(REPO)}: {page}#{anchor}")
        if path.parent == DOCS:
            missing += [f"{path.name}: #{a}" for a in IN_PAGE.findall(text) if a not in anchors[path.name]]
    assert not missing, "anchors with no matching heading:\n" + "\n".join(missing)


def test_nothing_cites_documents_outside_the_repository() -> None:
    # Built from pieces so that this file does not match its own search.
    pattern = re.compile(
        "|".join(re.escape(a + b) for a, b in (("methods", ".md"), ("shared", "/docs"), ("shared", "/papers")))
    )
    hits = []
    for path in tracked_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not hits, "references to documents that are not in the repository:\n" + "\n".join(hits)


def test_github_anchor() -> None:
    assert github_anchor("Rollouts and q_D") == "rollouts-and-q_d"
    assert github_anchor("RL protocol of Chen et al.") == "rl-protocol-of-chen-et-al"
    assert github_anchor("Chen et al. Table 1") == "chen-et-al-table-1"


def test_every_relative_markdown_link_points_at_a_file() -> None:
    """A link such as ``[x](docs/data.md#pitfalls)`` or ``[y](../README.md)`` names a file that exists."""
    link = re.compile(r"\]\(([^)\s]+)\)")
    broken = []
    for path in tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in link.findall(path.read_text(encoding="utf-8", errors="replace")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an in-page anchor (checked above)
            if not (path.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)
