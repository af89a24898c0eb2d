"""The sources stage: release data for every repository, each from the first source that can answer."""

from __future__ import annotations

import asyncio

from obsplan.compiler.sources.grafana_com import NotThisSource
from obsplan.compiler.sources.releases import ReleaseData, ReleaseSource, SourceUnavailable

CONCURRENCY = 8

Fetched = tuple[ReleaseData | None, str]  # (data or None when every source failed, the failures joined by "; ")


async def fetch_releases(repos: list[str], sources: list[ReleaseSource]) -> dict[str, Fetched]:
    """Each repository's release data, at most CONCURRENCY requests at a time."""
    sem = asyncio.Semaphore(CONCURRENCY)
    fetched = await asyncio.gather(*(fetch_first(r, sources, sem) for r in repos))
    return dict(zip(repos, fetched, strict=True))


async def fetch_first(repo: str, sources: list[ReleaseSource], sem: asyncio.Semaphore) -> Fetched:
    """The first source's answer (a source that does not carry `repo` is skipped, one that fails is noted)."""
    failures: list[str] = []
    for src in sources:
        try:
            async with sem:
                return await src.fetch(repo), "; ".join(failures)
        except NotThisSource:
            continue
        except SourceUnavailable as exc:
            failures.append(str(exc))
    return None, "; ".join(failures)
