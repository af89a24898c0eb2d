"""Breaking-change detection from real upstream CHANGELOG files and GitHub release bodies.

Upstream projects write changelogs in several formats (see shared/upstream/*/NOTES.md), all handled by one
line parser that detects version sections by their heading, whatever the project:

* Prometheus projects: `## 3.14.0 / 2026-08-17`, tagged entries `* [CHANGE] ...`, a `## main / unreleased`
  top section (skipped: it is no release), node_exporter's `### **Breaking changes**` subsections and
  mysqld_exporter's `BREAKING CHANGES:` label lines.
* Loki (release-please): `## [3.8.0](https://.../compare/v3.7.1...v3.8.0) (2026-06-08)` with
  `### ⚠ BREAKING CHANGES`; older `## 2.9.3 (2023-12-11)` sections.
* Grafana: `<!-- 12.0.0 START -->` ... `<!-- 12.0.0 END -->` around `# 12.0.0 (2025-05-05)`. Fenced blocks with
  the info string `markdown` are parsed as markdown (the vendored excerpt wraps verbatim sections that way);
  headings inside them count as nested below the enclosing heading.
* nginx-prometheus-exporter: `## 0.8.0` with `CHANGES:` / `FIXES:` label lines.
* GoReleaser release bodies (`## Changelog`, `### Breaking Changes`, `* abc1234 feat!: ...`) via
  `parse_release_body`, which has no version headings: the caller names the version.

Breaking rules, in order (the first that matches is the entry's `marker`):

1. A Prometheus-style tag is the author's own classification: `[CHANGE]` is breaking, every other tag
   (`[BUGFIX]`, `[ENHANCEMENT]`, ...) is not, unless the entry sits in a breaking-changes section. So
   "[BUGFIX] ... reverts the breaking changes introduced in 3.7.0" is not reported.
2. Untagged entries in a section whose heading or label says "breaking change" (`⚠ BREAKING CHANGES`).
3. Untagged entries containing the upper-case word `BREAKING` or the phrase "breaking change".
4. Conventional commits with `!:` (`feat!:`, `fix(api)!:`).
5. Untagged entries outside fix/perf/chore/dependency/deprecation sections: an upper-case `CHANGES` section
   (nginx), flag renames (a `--flag`/"flag" together with "renamed"/"changed from"/"replaced by"), and entries
   that start with Remove/Removes/Removed/Removal after any scope prefix (`**loki**:`, `Storage:`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from obsplan.compiler.intel.breaking_changes import (
    MARK_BANG,
    MARK_CHANGE,
    MARK_FLAG,
    MARK_PHRASE,
    MARK_REMOVED,
    MARK_SECTION,
    MARK_UPPER,
    Changelog,
    Entry,
)

from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import BreakingMarker

_VERSION_HEADING = re.compile(
    r"^\[?v?(?P<v>\d+\.\d+\.\d+(?:-[0-9A-Za-z.\-]+)?(?:\+[0-9A-Za-z.\-]+)?)\]?"
    r"(?:\([^)]*\))?(?:\s*/.*|\s+\(.*\))?$"
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_COMMENT_MARK = re.compile(r"^<!--\s*v?(\S+)\s+(START|END)\s*-->$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")
_LABEL = re.compile(
    r"^\**(breaking changes?|changes|features|enhancements|fixes|bug ?fixes|upgrade|compatibility|deprecations"
    r"|known issues|security)\**\s*:\**$",
    re.IGNORECASE,
)
_ISSUE_ONLY = re.compile(r"^(issues?|prs?|pull requests?)\s*[\[(#\d].*$", re.IGNORECASE)
_TAG = re.compile(r"^\[([A-Z]+)\]")
_BREAKING_TITLE = re.compile(r"breaking", re.IGNORECASE)
_QUIET_TITLE = re.compile(
    r"fix|bug|perf|chore|depend|doc|security|test|build|\bci\b|deprecat|revert|refactor|style", re.IGNORECASE
)
_UPPER_BREAKING = re.compile(r"\bBREAKING\b")
_PHRASE = re.compile(r"breaking changes?", re.IGNORECASE)
_BANG = re.compile(r"^(?:[0-9a-f]{7,40}\s+)?[a-z]+(?:\([^)]*\))?!:")
_SCOPE_PREFIX = re.compile(r"^(?:\*\*[^*]+\*\*:?\s*|[A-Za-z][\w./-]*(?:\s[A-Z][\w./-]*)?:\s+)")
_REMOVAL = re.compile(r"^(?:remove[sd]?|removal of)\b", re.IGNORECASE)
_FLAG = re.compile(r"(?:^|[\s`(])--?[a-z][\w-]*(?:\.[\w-]+)*|\b(?:flags?|arg|args|argument|arguments)\b")
_RENAME = re.compile(r"\brenamed\b|\bchanged from\b|\breplaced by\b", re.IGNORECASE)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_ANGLE_URL = re.compile(r"<(https?://[^>]+)>")
_LABEL_LEVEL = 13  # below any real heading (headings inside a markdown fence go down to 12)
_FENCE_DEPTH = 6


@dataclass
class _Pending:
    """An entry being assembled from a bullet or paragraph and its continuation lines."""

    parts: list[str]
    is_paragraph: bool
    breaking_section: bool
    quiet_section: bool
    changes_section: bool
    items: list[str] = field(default_factory=list)


@dataclass
class _Parser:
    source: str
    sections: Changelog = field(default_factory=dict)
    version: str | None = None
    level: int = 0
    heading: str = ""
    stack: list[tuple[int, str]] = field(default_factory=list)
    pending: _Pending | None = None

    def open(self, version: Version, level: int, heading: str) -> None:
        self.flush()
        key = str(version)
        if key == self.version:
            return
        self.version, self.level, self.heading, self.stack = key, level, heading, []
        self.sections.setdefault(key, [])

    def close(self) -> None:
        self.flush()
        self.version, self.stack = None, []

    def subheading(self, level: int, title: str) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))

    def start(self, text: str, is_paragraph: bool) -> None:
        self.flush()
        breaking = quiet = changes = False
        for _, title in reversed(self.stack):
            if _BREAKING_TITLE.search(title):
                breaking = True
                break
            if _QUIET_TITLE.search(title):
                quiet = True
                break
            if title.strip("*: ") == "CHANGES":
                changes = True
                break
        self.pending = _Pending([text], is_paragraph, breaking, quiet, changes)

    def flush(self) -> None:
        p, self.pending = self.pending, None
        if p is None or self.version is None:
            return
        head = _clean(" ".join(p.parts))
        items = [_clean(i) for i in p.items if _clean(i)]
        if items:
            text = head + (" " if head.endswith(":") else "; ") + "; ".join(items) if head else "; ".join(items)
        elif p.is_paragraph and head.endswith(":"):
            return  # a lead-in to a code block: nothing to report on its own
        else:
            text = head
        if not text:
            return
        marker = _classify(text, p)
        self.sections[self.version].append(
            Entry(
                version=self.version,
                text=text,
                breaking=marker is not None,
                marker=marker,
                source=f"{self.source}: {self.heading}",
            )
        )


def _clean(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = _ANGLE_URL.sub(r"\1", text)
    return " ".join(text.split())


def _classify(text: str, p: _Pending) -> BreakingMarker | None:
    tag = _TAG.match(text)
    if tag:
        if tag.group(1) == "CHANGE":
            return MARK_CHANGE
        return MARK_SECTION if p.breaking_section else None
    if p.breaking_section:
        return MARK_SECTION
    if _UPPER_BREAKING.search(text):
        return MARK_UPPER
    if _PHRASE.search(text):
        return MARK_PHRASE
    if _BANG.match(text):
        return MARK_BANG
    if p.quiet_section:
        return None
    if p.changes_section:
        return MARK_CHANGE
    if _FLAG.search(text) and _RENAME.search(text):
        return MARK_FLAG
    body = text
    for _ in range(2):  # `**loki**: Storage: remove ...` carries two prefixes
        body = _SCOPE_PREFIX.sub("", body, count=1)
    if _REMOVAL.match(body):
        return MARK_REMOVED
    return None


class _Lines:
    """Feeds a changelog to the parser line by line: code fences (skipped unless Markdown), HTML comment
    markers, headings, labels, bullets and paragraphs."""

    def __init__(self, parser: _Parser):
        self.parser = parser
        self.fences: list[tuple[str, int, bool]] = []  # (fence char, length, parsed as markdown)
        self.blank = False

    def feed(self, raw: str) -> None:
        line = raw.rstrip()
        fence = _FENCE.match(line)
        if self.fences and not self.fences[-1][2]:
            self._inside_code(fence)
            return
        if fence:
            self._fence(fence)
            return
        stripped = line.strip()
        if self._comment(stripped) or stripped.startswith("<!--"):
            return
        heading = _HEADING.match(line)
        if heading:
            self._heading(heading, stripped)
        elif self.parser.version is None:
            return
        elif not stripped:
            self.blank = True
            return
        elif _LABEL.match(stripped):
            self.parser.subheading(_LABEL_LEVEL, stripped)
        elif not self._text(line, stripped):
            return  # an indented code block: the blank line before it still counts
        self.blank = False

    def _inside_code(self, fence: re.Match[str] | None) -> None:
        if fence and fence.group(1)[0] == self.fences[-1][0] and len(fence.group(1)) >= self.fences[-1][1]:
            self.fences.pop()

    def _fence(self, fence: re.Match[str]) -> None:
        char, n, info = fence.group(1)[0], len(fence.group(1)), fence.group(2).lower()
        if self.fences and char == self.fences[-1][0] and n >= self.fences[-1][1] and not info:
            self.fences.pop()
        else:
            self.fences.append((char, n, info in ("markdown", "md")))
        self.parser.flush()
        self.blank = False

    def _comment(self, stripped: str) -> bool:
        """`<!-- vX.Y.Z START -->` / `END` markers open and close a version; True when the line was one."""
        comment = _COMMENT_MARK.match(stripped)
        if not comment:
            return False
        if comment.group(2) == "END":
            self.parser.close()
            return True
        try:
            self.parser.open(Version.parse(comment.group(1)), 0, stripped)
        except ValueError:
            self.parser.close()
        return True

    def _heading(self, heading: re.Match[str], stripped: str) -> None:
        level = len(heading.group(1)) + _FENCE_DEPTH * len(self.fences)
        title = heading.group(2)
        vm = _VERSION_HEADING.match(title)
        version = None
        if vm:
            try:
                version = Version.parse(vm.group("v"))
            except ValueError:
                version = None
        if version is not None:
            self.parser.open(version, level, stripped)
        elif self.parser.version is not None and level <= self.parser.level:
            self.parser.close()
        else:
            self.parser.subheading(level, title)

    def _text(self, line: str, stripped: str) -> bool:
        """A bullet or a paragraph line; False for a line of an indented code block (skipped)."""
        bullet = _BULLET.match(line)
        pending = self.parser.pending
        if bullet:
            indent, body = len(bullet.group(1)), bullet.group(2)
            if pending is not None and (
                (indent >= 2 and not pending.is_paragraph) or (pending.is_paragraph and pending.parts[-1].endswith(":"))
            ):
                pending.items.append(body)
            else:
                self.parser.start(body, is_paragraph=False)
            return True
        indent = len(line) - len(line.lstrip())
        if self.blank and indent >= 4 and (pending is None or pending.is_paragraph):
            return False
        if pending is not None and (not self.blank or _ISSUE_ONLY.match(stripped)):
            if pending.items:
                pending.items[-1] += " " + stripped
            else:
                pending.parts.append(stripped)
        else:
            self.parser.start(stripped, is_paragraph=True)
        return True


def _parse(text: str, parser: _Parser) -> Changelog:
    lines = _Lines(parser)
    for raw in text.splitlines():
        lines.feed(raw)
    parser.flush()
    return parser.sections


def parse_changelog(text: str, source: str = "CHANGELOG.md") -> Changelog:
    """Split a changelog into per-version entries; `source` names the file in each entry's `source`."""
    return _parse(text, _Parser(source=source))


def parse_release_body(text: str, version: Version, source: str = "release body") -> Changelog:
    """Parse one GitHub release body (GoReleaser `## Changelog` style), which carries no version heading."""
    parser = _Parser(source=source)
    parser.open(version, 0, f"v{version}")
    return _parse(text, parser)
