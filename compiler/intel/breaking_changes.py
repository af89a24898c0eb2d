"""Breaking changes between two versions: changelog entries, where each component's come from
(`policies/breaking-changes.yaml`, curated entries included), merging and coverage of the requested range.

Parsing real upstream CHANGELOG files and release bodies, and the breaking rules behind each `MARK_*`, live in
changelog_parse.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

from obsplan.compiler.config.inputs import read_policy_yaml
from pydantic import BaseModel, ConfigDict

from obsplan.kernel.version_types import VersionValue
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import BreakingChange, BreakingMarker

# The lock's `BreakingMarker` (obsplan/lock/lockfile.py) is exactly these (tests/test_changelog.py).
MARK_CHANGE: Final = "[CHANGE]"
MARK_SECTION: Final = "BREAKING CHANGES section"
MARK_UPPER: Final = "BREAKING"
MARK_PHRASE: Final = "breaking change"
MARK_BANG: Final = "!:"
MARK_FLAG: Final = "flag rename"
MARK_REMOVED: Final = "removed"
MARK_CURATED: Final = "curated"


class Entry(BaseModel):
    """One changelog entry (a bullet, or a prose paragraph) of one version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: VersionValue
    text: str
    breaking: bool
    marker: BreakingMarker | None = None
    source: str

    def lock_entry(self) -> BreakingChange:
        """This breaking entry as a step of the lock records it."""
        if self.marker is None:  # every breaking entry is flagged by a rule (_classify, curated)
            raise ValueError(f"changelog entry of {self.version} in {self.source} has no breaking marker")
        return BreakingChange(version=str(self.version), text=self.text, source=self.source, marker=self.marker)


Changelog = dict[str, list[Entry]]
"""Parsed changelog: normalised version string → entries, every version section found (even empty ones)."""


class Coverage(BaseModel):
    """Whether the changelog covered the requested range, so a caller can say "CHANGELOG missing, risk not lowered"."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["complete", "partial", "unavailable"]
    missing: list[str] = []
    reason: str | None = None


class BreakingChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[Entry]
    coverage: Coverage


class CuratedChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: VersionValue
    text: str
    source: str


class ChangelogSources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changelogs: list[str] = []
    release_bodies_from: VersionValue | None = None
    curated: list[CuratedChange] = []


class BreakingPolicy(BaseModel):
    """`policies/breaking-changes.yaml`: where each component's breaking changes come from."""

    model_config = ConfigDict(extra="forbid")

    components: dict[str, ChangelogSources]

    def curated(self, component: str) -> Changelog:
        """The curated breaking changes of a component as a changelog, to merge with the parsed files."""
        out: Changelog = {}
        sources = self.components.get(component)
        for c in sources.curated if sources else []:
            version = VersionValue.of(c.version.version)
            entry = Entry(version=version, text=c.text, breaking=True, marker=MARK_CURATED, source=c.source)
            out.setdefault(str(version), []).append(entry)
        return out


def load_breaking_policy(path: str | Path | None = None) -> BreakingPolicy:
    """Read `policies/breaking-changes.yaml` (the packaged copy when `path` is None)."""
    return read_policy_yaml(BreakingPolicy, "breaking-changes.yaml", path)


def merge_changelogs(changelogs: Iterable[Mapping[str, list[Entry]]]) -> Changelog:
    """Merge several changelogs of one component (Prometheus keeps 3.5.x LTS patches in a branch file).

    A version present in several files gets the union of its entries, first file first, identical texts once.
    """
    merged: Changelog = {}
    for changelog in changelogs:
        for version, entries in changelog.items():
            target = merged.setdefault(version, [])
            seen = {e.text for e in target}
            target.extend(e for e in entries if e.text not in seen)
    return merged


def breaking_between(
    changelogs: Sequence[Mapping[str, list[Entry]]],
    from_version: Version,
    to_version: Version,
    releases: Iterable[Version] | None = None,
) -> BreakingChanges:
    """Breaking entries of every version v with from < v <= to, in version order, and how well the range is covered.

    Pre-release sections inside the range are included: a final release ships its pre-releases' changes, and
    Grafana lists its major-version breaking changes only under `# 11.0.0-preview`. When `releases` (the
    component's known release versions) is given, each one in the range without a section is reported missing
    (pre-releases only when `to_version` is itself a pre-release); without it only `to_version` is checked.
    An entry repeated in a later version (a backport, an rc listed again in the final) is reported once.
    """
    merged = merge_changelogs(changelogs)
    if not merged:
        return BreakingChanges(
            entries=[],
            coverage=Coverage(status="unavailable", reason="no changelog, or no version section could be parsed"),
        )
    present = {Version.parse(k): k for k in merged}
    in_range = sorted(v for v in present if from_version < v <= to_version)
    entries: list[Entry] = []
    seen: set[str] = set()
    for v in in_range:
        for e in merged[present[v]]:
            if e.breaking and e.text not in seen:
                seen.add(e.text)
                entries.append(e)
    if releases is None:
        expected = {to_version}
    else:
        expected = {
            r for r in releases if from_version < r <= to_version and (not r.is_prerelease or to_version.is_prerelease)
        }
    missing = [str(v) for v in sorted(expected - present.keys())]
    if not in_range:
        lo, hi = min(present), max(present)
        coverage = Coverage(
            status="unavailable",
            missing=missing,
            reason=f"the changelog covers {lo}..{hi}, no section in ({from_version}, {to_version}]",
        )
    elif missing:
        coverage = Coverage(status="partial", missing=missing, reason=f"{len(missing)} version(s) without a section")
    else:
        coverage = Coverage(status="complete")
    return BreakingChanges(entries=entries, coverage=coverage)


def summarise(result: BreakingChanges) -> dict[str, int]:
    """Count of breaking entries per version, in version order (for the plan report)."""
    counts: dict[Version, int] = {}
    for e in result.entries:
        counts[e.version.version] = counts.get(e.version.version, 0) + 1
    return {str(v): n for v, n in sorted(counts.items())}
