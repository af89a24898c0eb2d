"""Release data: what a release source returns, independent of where it came from."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from obsplan.kernel.versions import Version, go_module_twin, parse_tag
from obsplan.lock.lockfile import SourceKind


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str
    published_at: str | None = None
    prerelease: bool = False
    draft: bool = False
    assets: dict[str, str] | None = Field(
        default=None, description="asset name → download URL; None when the source does not list assets"
    )
    body: str = ""
    downloads_api: str | None = Field(
        default=None, description="grafana.com product that gives each platform's package URL and sha256 on request"
    )

    def version(self, tag_prefix: str = "") -> Version | None:
        """The release version the tag names for this tag prefix (`kernel.versions.parse_tag`, which remembers
        its answers: no per-instance cache, whose default factory pydantic would inspect for every release)."""
        return parse_tag(self.tag, tag_prefix)


class ReleaseData(BaseModel):
    """All releases of one repository, as one source saw them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo: str
    releases: list[Release]
    source: SourceKind
    as_of: str | None = None
    detail: str = ""
    warnings: list[str] = Field(default_factory=list, description="entries of the source skipped as malformed")


class ReleaseSource(Protocol):
    """Anything that can list a repository's releases (GitHub API, cache, embedded snapshot)."""

    async def fetch(self, repo: str) -> ReleaseData: ...


class SourceUnavailable(Exception):
    """A source could not answer (rate limit, 5xx, timeout, no network, offline); the caller falls back."""


def candidates(data: ReleaseData, *, tag_prefix: str = "", ignore_twins: bool = False) -> dict[Version, Release]:
    """Map each release version to its release, dropping drafts and tags that are not releases.

    When a version appears more than once (a stray unprefixed tag beside `vX.Y.Z`), the first wins.
    """
    out: dict[Version, Release] = {}
    for rel in data.releases:
        if rel.draft:
            continue
        v = rel.version(tag_prefix)
        if v is None or (ignore_twins and go_module_twin(v)):
            continue
        out.setdefault(v, rel)
    return out


def is_stable(v: Version, rel: Release) -> bool:
    return not (rel.prerelease or v.is_prerelease)
