"""The documentation holds together: every relative link in README.md and docs/*.md reaches an existing file (and
heading), the README stays a short entry page that starts with the two commands a newcomer needs, and the README's
map names every page of docs/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INSTALL_AND_PLAN = (
    "python3 -m venv .venv && .venv/bin/pip install -e . && "
    ".venv/bin/obsplan plan --config-dir examples --env staging --offline -o demo/staging.lock"
)
TEST_COMMAND = "python3 -m pytest -q --durations=15"


def relative_links(page: Path) -> list[str]:
    """The link targets of PAGE outside code blocks that are neither URLs nor mail addresses."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        missing_anchor = bool(anchor) and file.suffix == ".md" and file.exists() and anchor not in anchors(file)
        if not file.exists() or missing_anchor:
            broken.append(target)
    assert broken == []


def test_the_link_check_sees_links_and_catches_a_broken_one(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "# A title: `x`\n[ok](#a-title-x) [bad](missing.md) [web](https://x.org/a.md)\n```\n[c](no.md)\n```\n"
    )
    assert relative_links(page) == ["#a-title-x", "missing.md"]
    assert anchors(page) == {"a-title-x"}


def test_readme_is_short() -> None:
    assert len(README.read_bytes()) <= 12 * 1024


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    title, first, second = re.match(r"(# .+)\n\n```sh\n(.+?)\n```\n\n```sh\n(.+?)\n```\n", text).groups()  # type: ignore[union-attr]
    assert first == INSTALL_AND_PLAN
    assert second.startswith("bash .ci/run ") and TEST_COMMAND in second
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci_run[-1] == TEST_COMMAND  # the README says exactly what CI runs
    assert 'python3 -m pytest -q -m "not e2e"' in text  # the fast lane


def test_readme_maps_every_docs_page() -> None:
    linked = {Path(t.partition("#")[0]).name for t in relative_links(README) if t.startswith("docs/")}
    assert {p.name for p in PAGES} - linked == set()


def test_the_code_maps_match_the_tree() -> None:
    """README.md's and docs/development.md's code maps are generated from the packages' docstrings."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "code_map.py")], capture_output=True, text=True)
    assert proc.returncode == 0, f"run `python scripts/code_map.py --write`: {proc.stdout}"
