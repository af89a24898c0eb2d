"""Release versions parsed from real, messy upstream tags.

Upstream tag lists mix many schemes (see shared/upstream/*/NOTES.md): `v3.14.0` and its Go-module twin
`v0.314.0`, `0.12.0rc1` without a dot, `v2.35.0-rc0`, `0.1.0beta2`, `+stringlabels` build variants,
`-retract` markers, Grafana's `+security-01` re-releases, monorepo tags (`helm-loki-6.1.0`,
`operator/v0.6.0`) and non-version tags (`dev`, `checkout`). `parse_tag` turns a tag into a `Version`
or says why it is not a release of the component.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache, total_ordering

import semver

_TAG_RE = re.compile(
    r"^(?P<core>\d+\.\d+\.\d+)"
    r"(?:-?(?P<pre>(?:rc|alpha|beta|preview|pre)[.\-]?\d*(?:[.\-][0-9A-Za-z.\-]+)?))?"
    r"(?:\+(?P<build>[0-9A-Za-z.\-]+))?$"
)
_SECURITY_RE = re.compile(r"^security-(\d+)$")


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A release version: semver precedence, plus Grafana's `+security-NN` re-releases ordered after the base."""

    sem: semver.Version
    security: int = 0

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse a version written by a user (`1.7.0`, `v2.55.1`, `11.6.14+security-01`); raises ValueError."""
        v = parse_tag(text.strip())
        if v is None:
            raise ValueError(f"{text!r} is not a release version (expected MAJOR.MINOR.PATCH, e.g. 1.7.0)")
        return v

    @property
    def is_prerelease(self) -> bool:
        return self.sem.prerelease is not None

    @property
    def major(self) -> int:
        return self.sem.major

    @property
    def minor(self) -> int:
        return self.sem.minor

    @property
    def patch(self) -> int:
        return self.sem.patch

    def line(self) -> str:
        """The release line, e.g. `3.5` for 3.5.2."""
        return f"{self.sem.major}.{self.sem.minor}"

    @cached_property
    def _key(self) -> tuple[int, int, int, tuple[tuple[int, int | str], ...], int]:
        """Semver precedence as a plain tuple (fast to compare): a release sorts after its pre-releases,
        numeric identifiers before alphanumeric ones."""
        pre: tuple[tuple[int, int | str], ...] = ((2, 0),)
        if self.sem.prerelease:
            pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.sem.prerelease.split("."))
        return (self.sem.major, self.sem.minor, self.sem.patch, pre, self.security)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key < other._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @cached_property
    def _text(self) -> str:
        sem = self.sem  # semver's own text without the build part (semver's `replace` builds a new Version)
        base = f"{sem.major}.{sem.minor}.{sem.patch}" + (f"-{sem.prerelease}" if sem.prerelease else "")
        return f"{base}+security-{self.security:02d}" if self.security else base

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"


def version_or_none(text: str | None) -> Version | None:
    """`Version.parse(text)`, or None when `text` is None, empty or not a release version."""
    if not text:
        return None
    try:
        return Version.parse(text)
    except ValueError:
        return None


def highest_floor(floors: list[str]) -> str | None:
    """The highest of these rollback floors as written (state.db's and the lock's text); one that is not a release
    version ranks as 0.0.0."""
    zero = Version(semver.Version(0, 0, 0))
    return max(floors, key=lambda f: version_or_none(f) or zero) if floors else None


def _normalise_pre(pre: str) -> str:
    """`rc0` → `rc.0`, `beta2` → `beta.2`, `rc-1` → `rc.1`, `preview` stays."""
    m = re.match(r"^(rc|alpha|beta|preview|pre)[.\-]?(\d*)(.*)$", pre)
    if not m:
        return pre
    word, num, rest = m.groups()
    out = word + (f".{num}" if num else "")
    return out + rest.replace("-", ".") if rest else out


# A tag list, a changelog and a config name the same versions many times; a Version is immutable, so one is shared.
@lru_cache(maxsize=65536)
def parse_tag(tag: str, prefix: str = "") -> Version | None:
    """Return the release version a tag names, or None when the tag is not a release of this component.

    `prefix` selects one product of a monorepo (e.g. `operator/` for Loki's operator); tags of other
    products never match. A leading `v` is optional. Build-metadata variants other than Grafana's
    `+security-NN` (`+stringlabels`, `+dedupelabels`) are alternative builds of a version that also has
    a plain tag, so they are not separate releases. `-retract` tags are Go-module retraction markers.
    """
    if prefix:
        if not tag.startswith(prefix):
            return None
        tag = tag[len(prefix) :]
    if tag.startswith("v"):
        tag = tag[1:]
    if tag.endswith("-retract"):
        return None
    m = _TAG_RE.match(tag)
    if not m:
        return None
    security = 0
    build = m.group("build")
    if build:
        sm = _SECURITY_RE.match(build)
        if not sm:
            return None
        security = int(sm.group(1))
    pre, core = m.group("pre"), m.group("core")
    if not pre:  # most tags: the three numbers, as semver reads them (no leading zeros) without its parser
        major, minor, patch = core.split(".")
        if any(len(n) > 1 and n[0] == "0" for n in (major, minor, patch)):
            return None
        return Version(semver.Version(int(major), int(minor), int(patch)), security)
    try:
        sem = semver.Version.parse(f"{core}-{_normalise_pre(pre)}")
    except ValueError:
        return None
    return Version(sem, security)


def go_module_twin(v: Version) -> bool:
    """Prometheus tags every release since 2.35 twice: `v2.35.0` and the Go-module `v0.35.0` (3.14.0 → v0.314.0).

    Such a `v0.N.P` tag with N ≥ 35 is never a release of its own.
    """
    return v.major == 0 and v.minor >= 35


@dataclass(frozen=True)
class VersionRange:
    """A constraint like `>=2.9.0 <3.0.0` (space or comma separated comparators, all must hold)."""

    text: str
    clauses: tuple[tuple[str, Version], ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
        if not parts:
            raise ValueError("empty version range (write e.g. '>=2.9.0 <3.0.0')")
        clauses: list[tuple[str, Version]] = []
        for p in parts:
            m = re.match(r"^(>=|<=|==|!=|>|<|=|~|\^)?(.+)$", p)
            assert m is not None
            op = m.group(1) or "=="
            try:
                ver = Version.parse(m.group(2))
            except ValueError as exc:
                raise ValueError(f"bad version in range {text!r}: {exc}") from None
            if op in ("~", "^"):
                upper = (
                    semver.Version(ver.major, ver.minor + 1, 0) if op == "~" else semver.Version(ver.major + 1, 0, 0)
                )
                clauses += [(">=", ver), ("<", Version(upper))]
            else:
                clauses.append(("==" if op == "=" else op, ver))
        return cls(text.strip(), tuple(clauses))

    def contains(self, v: Version) -> bool:
        for op, bound in self.clauses:
            ok = {
                ">=": v >= bound,
                "<=": v <= bound,
                ">": v > bound,
                "<": v < bound,
                "==": v == bound,
                "!=": v != bound,
            }[op]
            if not ok:
                return False
        return True

    def __str__(self) -> str:
        return self.text
