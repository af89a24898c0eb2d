"""The artifacts stage: each step's and each target's archive per platform, with its URL and sha256."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from obsplan.compiler.config.catalog import make_artifact
from obsplan.compiler.plan.dag import Hop
from obsplan.compiler.resolve.pick_target import on_github
from obsplan.compiler.resolve.resolve_stage import Resolved
from obsplan.compiler.sources.grafana_com import GrafanaComSource
from obsplan.compiler.sources.known_checksums import ChecksumBook
from obsplan.compiler.sources.releases import Release
from obsplan.compiler.sources.upstream_checksums import ChecksumFetcher, parse_checksum_file

import obsplan.kernel.checksum_file as checksum_file
from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Artifact, Lock

ArtifactKey = tuple[str, Version]  # (component, version)


@dataclass
class ArtifactSources:
    """Where an artifact's URL and sha256 come from, first match wins: the promoted environment's lock (exactly
    its artifacts), the previous lock, upstream (checksum file, or its cache), then checksums learned elsewhere."""

    checksums: ChecksumFetcher
    previous: Lock | None
    promoted: Lock | None = None
    book: ChecksumBook | None = None
    downloads: GrafanaComSource | None = None


async def collect_artifacts(
    hops: dict[str, Hop], resolved: dict[str, Resolved], platforms: list[str], src: ArtifactSources
) -> dict[ArtifactKey, dict[str, Artifact]]:
    """Every hop's artifacts (fetched concurrently), then each target no hop reaches (one at a time, by name)."""
    keys = sorted({(h.component, h.to_version) for h in hops.values()}, key=lambda k: (k[0], k[1]))
    results = await asyncio.gather(*(artifacts_for(resolved[c], v, platforms, src) for c, v in keys))
    out = dict(zip(keys, results, strict=True))
    for name, r in sorted(resolved.items()):
        if not out.get((name, r.target.version)):
            out[(name, r.target.version)] = await artifacts_for(r, r.target.version, platforms, src)
    return out


async def artifacts_for(r: Resolved, v: Version, platforms: list[str], src: ArtifactSources) -> dict[str, Artifact]:
    promoted = _previous_artifacts(src.promoted, r.name, v)
    reuse = _previous_artifacts(src.previous, r.name, v)
    rel = r.cands.usable.get(v) or Release(tag=f"v{v}")
    out: dict[str, Artifact] = {}
    for p in platforms:
        if p in promoted:
            out[p] = promoted[p]
        elif p in reuse and reuse[p].sha256:
            out[p] = reuse[p]
        else:
            out[p] = await _upstream_artifact(r, v, rel, p, src)
    return out


async def _upstream_artifact(r: Resolved, v: Version, rel: Release, p: str, src: ArtifactSources) -> Artifact:
    explicit = r.spec.artifact_urls.get(str(v), {}).get(p)  # the user's own URL wins over the downloads API
    if src.downloads is not None and rel.downloads_api and not explicit:
        pkg = await src.downloads.package(rel.downloads_api, v, p)
        if pkg is not None:  # grafana.com: the exact URL (build id included) and its sha256
            pkg_url, pkg_sha = pkg
            return make_artifact(r.defn, pkg_url, pkg_url.rsplit("/", 1)[-1], pkg_sha, None, src.downloads.origin)
    art = r.defn.artifact_for(v, rel.tag, p)
    if art is None:
        raise ObsplanError(
            f"no artifact URL is known for {r.name} {v} on {p}",
            key=f"components.{r.name}.artifact_urls",
            hint=f'add artifact_urls: {{"{v}": {{{p}: "https://..."}}}} to versions.yaml',
        )
    url, filename = art
    if rel.assets and on_github(r.defn) and rel.assets.get(filename):
        url = rel.assets[filename]
    sha, checksum_url = await _checksum(r, v, rel, url, filename, src.checksums)
    known = src.book.lookup(r.name, str(v), p, filename) if src.book and not sha else None
    if known is not None:
        sha, checksum_url = known.sha256, known.checksum_url or checksum_url
    return make_artifact(r.defn, url, filename, sha, checksum_url, known.origin if known else None)


async def _checksum(
    r: Resolved, v: Version, rel: Release, url: str, filename: str, checksums: ChecksumFetcher
) -> tuple[str | None, str | None]:
    sidecar = r.defn.sidecar_url(url, v)
    if sidecar is not None:  # one checksum file per artifact (`checksums: "{url}.sha256"`)
        text, _ = await checksums.text(sidecar)
        return (checksum_file.lookup(text, filename) if text else None), sidecar
    name = r.defn.checksum_name(v)
    if name is None:
        return None, None
    listed = rel.assets.get(name) if rel.assets and on_github(r.defn) else None
    cs_url = listed or r.defn.download_url.format(repo=r.defn.github_repo, tag=rel.tag, asset=name, version=str(v))
    text, _ = await checksums.text(cs_url)
    return (parse_checksum_file(text).get(filename) if text else None), cs_url


def _previous_artifacts(previous: Lock | None, name: str, v: Version) -> dict[str, Artifact]:
    if previous is None:
        return {}
    comp = previous.components.get(name)
    if comp and comp.version == str(v):
        return dict(comp.artifacts)
    for step in previous.plan.steps:
        if step.component == name and step.to_version == str(v):
            return dict(step.artifacts)
    return {}
