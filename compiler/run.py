"""Wire the compiler to the real world: environment variables, the HTTP client, the cache, the clock.

This is the only compiler module that reads the process environment; everything below it takes values.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan.compiler.compile import CompileResult, Services, compile_lock
from obsplan.compiler.config.catalog import downloads_products
from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.plan_options import Options
from obsplan.compiler.config.specs_stage import effective_specs
from obsplan.compiler.intel.advisories import load_advisories
from obsplan.compiler.intel.advisory_versions import load_mappings
from obsplan.compiler.intel.osv_api import OsvClient
from obsplan.compiler.resolve.promote import find_promoted
from obsplan.compiler.sources.changelog_source import ChangelogFetcher
from obsplan.compiler.sources.github import DEFAULT_API, GitHubSource
from obsplan.compiler.sources.grafana_com import DEFAULT_GRAFANA_API, GrafanaComSource
from obsplan.compiler.sources.http_cache import HttpCache
from obsplan.compiler.sources.http_client import client_for
from obsplan.compiler.sources.known_checksums import ChecksumBook, FolderLock, folder_locks, snapshot_checksums
from obsplan.compiler.sources.releases import ReleaseSource
from obsplan.compiler.sources.snapshot import SnapshotSource
from obsplan.compiler.sources.sources_stage import fetch_first
from obsplan.compiler.sources.upstream_checksums import ChecksumFetcher

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Lock, load_lock

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Settings:
    api_url: str
    token: str | None
    cache_dir: Path | None
    ttl: timedelta
    now: datetime
    grafana_api: str = DEFAULT_GRAFANA_API

    @classmethod
    def from_env(cls, now: datetime | None = None, use_cache: bool = True) -> Settings:
        env = os.environ
        cache = Path(env.get("OBSPLAN_CACHE_DIR") or Path.home() / ".cache" / "obsplan")
        ttl = int(env.get("OBSPLAN_CACHE_TTL", "900"))
        when = now or _env_now() or datetime.now(UTC)
        return cls(
            env.get("GITHUB_API_URL", DEFAULT_API),
            env.get("GITHUB_TOKEN") or None,
            cache if use_cache else None,
            timedelta(seconds=ttl),
            when,
            env.get("GRAFANA_COM_API_URL", DEFAULT_GRAFANA_API),
        )


def _env_now() -> datetime | None:
    raw = os.environ.get("OBSPLAN_NOW")
    if not raw:
        return None
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ObsplanError(
            f"OBSPLAN_NOW={raw!r} is not an ISO date",
            key="OBSPLAN_NOW",
            hint="use e.g. 2026-11-22 or 2026-11-22T12:00:00+00:00",
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def http_cache(client: httpx.AsyncClient | None, settings: Settings, offline: bool) -> HttpCache:
    """The one HTTP cache every fetcher goes through (cache only when offline)."""
    return HttpCache(settings.cache_dir, client, ttl=settings.ttl, now=settings.now, offline=offline)


def source_chain(
    client: httpx.AsyncClient | None, settings: Settings, offline: bool, snapshot: SnapshotSource
) -> list[ReleaseSource]:
    """grafana.com (for the components it releases), GitHub (through the HTTP cache; cache only when offline),
    then the embedded snapshot."""
    http = http_cache(client, settings, offline)
    github = GitHubSource(http, api_url=settings.api_url, token=settings.token)
    grafana = GrafanaComSource(http, products=downloads_products(), api_url=settings.grafana_api)
    return [grafana, github, snapshot] if not offline or settings.cache_dir is not None else [snapshot]


def compile_environment(inputs: Inputs, opts: Options, settings: Settings) -> CompileResult:
    """Compile `opts.environment` of the loaded `inputs` (offline too when the environment says so)."""
    _, _, env_offline = effective_specs(inputs, opts.environment)
    if env_offline and not opts.offline:
        opts = replace(opts, offline=True)
    previous: Lock | None = None
    read: dict[Path, Lock] = {}  # the previous lock is also one of the folder's locks: read it once
    if opts.previous_lock is not None and opts.previous_lock.exists():
        previous = load_lock(opts.previous_lock, verify=False)
        read[opts.previous_lock.resolve()] = previous
        if previous.environment != opts.environment:
            previous = None
    dirs = [opts.previous_lock.parent if opts.previous_lock is not None else Path("plans"), Path("plans")]
    locks = folder_locks(dirs, read=read)
    espec = inputs.versions.environments.get(opts.environment)
    promoted = find_promoted(opts.environment, espec, locks, dirs, str(inputs.config_dir / "versions.yaml"))
    return asyncio.run(_compile(inputs, opts, settings, previous, locks, promoted))


def checksum_book(locks: list[FolderLock], promoted: FolderLock | None, snapshot: SnapshotSource) -> ChecksumBook:
    """Checksums learned before: the promoted lock first, the plans folder's other locks, the snapshot."""
    book = ChecksumBook()
    for fl in ([promoted] if promoted else []) + locks:
        book.learn_lock(fl.lock, fl.origin)
    book.learn_snapshot(snapshot.checksums, f"embedded snapshot of {snapshot.as_of}")
    return book


async def _compile(
    inputs: Inputs,
    opts: Options,
    settings: Settings,
    previous: Lock | None,
    locks: list[FolderLock],
    promoted: FolderLock | None,
) -> CompileResult:
    async with client_for(settings.api_url, opts.offline) as client:
        snapshot = SnapshotSource.embedded()
        sources = source_chain(client, settings, opts.offline, snapshot)
        http = http_cache(client, settings, opts.offline)
        checksums = ChecksumFetcher(http)
        paths = _advisory_paths(inputs, opts.advisory_dirs)
        for p in paths:
            if not p.exists():
                raise ObsplanError(
                    "advisory path not found",
                    file=str(p),
                    key="advisories",
                    hint="point it at a directory of OSV *.json records",
                )
        db = load_advisories(paths) if paths else None
        osv = None
        if inputs.policy.osv_api.enabled and inputs.policy.safety.security_advisory_check and client is not None:
            osv = OsvClient(http, os.environ.get("OSV_API_URL", inputs.policy.osv_api.url), load_mappings())
        fetcher = None
        if client is not None:
            fetcher = ChangelogFetcher(http, api_url=settings.api_url, token=settings.token)
        book = checksum_book(locks, promoted, snapshot)
        svc = Services(sources, checksums, snapshot.changelogs, db, osv, fetcher, book, promoted)
        return await compile_lock(inputs, opts, previous, svc)


def _advisory_paths(inputs: Inputs, advisory_dirs: tuple[Path, ...]) -> list[Path]:
    """The advisory sources to read: none when `safety.security_advisory_check` is false."""
    if not inputs.policy.safety.security_advisory_check:
        if advisory_dirs:
            raise ObsplanError(
                "--advisories given but safety.security_advisory_check is false",
                key="--advisories",
                hint="drop --advisories, or set security_advisory_check: true",
            )
        return []
    return [inputs.config_dir / p for p in inputs.policy.advisories] + list(advisory_dirs)


def release_data(repo: str, settings: Settings, offline: bool) -> tuple[list[tuple[str, str | None, bool]], str]:
    """(tag, date, prerelease) for `list-versions`, from the same fallback chain as `plan`, and a note saying
    where they came from when that is not upstream itself (the cache or the embedded snapshot, and why)."""

    async def go() -> tuple[list[tuple[str, str | None, bool]], str]:
        async with client_for(settings.api_url, offline) as client:
            chain = source_chain(client, settings, offline, SnapshotSource.embedded())

            data, failures = await fetch_first(repo, chain, asyncio.Semaphore(1))
            if data is None:
                raise ObsplanError(f"no release data for {repo}: {failures}", hint="run online or refresh the cache")
            rows = [(r.tag, r.published_at, r.prerelease) for r in data.releases if not r.draft]
            return rows, _fallback_note(data.source, data.as_of, failures, offline)

    return asyncio.run(go())


def _fallback_note(source: str, as_of: str | None, failures: str, offline: bool) -> str:
    if source in ("github", "grafana_com"):
        return ""
    what = {"cache": "obsplan's HTTP cache", "snapshot": "the release snapshot embedded in obsplan"}.get(source, source)
    why = "offline" if offline else (failures or "upstream was not reachable")
    return f"these versions come from {what}" + (f" of {as_of}" if as_of else "") + f" ({why}); newer ones may exist"


def refresh_snapshot(settings: Settings, checksums_from: tuple[Path, ...] = ()) -> str:
    """Fetch every built-in repository from the API (no cache, no fallback) as a snapshot document, with the
    verified checksums of the locks in `checksums_from` (so an offline plan from this snapshot is verified)."""
    from obsplan.compiler.config.catalog import builtin_definitions
    from obsplan.compiler.sources.snapshot import snapshot_document

    repos = sorted({str(d["github_repo"]) for d in builtin_definitions().values()})

    async def go() -> str:
        async with client_for(settings.api_url, offline=False) as client:
            uncached = HttpCache(None, client, ttl=settings.ttl, now=settings.now)
            src = GitHubSource(uncached, api_url=settings.api_url, token=settings.token)
            try:
                data = await asyncio.gather(*(src.fetch(r) for r in repos))
            except Exception as exc:  # SourceUnavailable: a refresh must not silently fall back
                raise ObsplanError(
                    f"snapshot refresh failed: {exc}",
                    key="GITHUB_API_URL",
                    hint="check network access and GITHUB_TOKEN",
                ) from None
        book = ChecksumBook()
        for fl in folder_locks(list(checksums_from)):
            book.learn_lock(fl.lock, fl.origin)
        return snapshot_document(
            settings.now.date().isoformat(),
            dict(zip(repos, data, strict=True)),
            f"GitHub API {settings.api_url}",
            checksums=snapshot_checksums(book),
        )

    return asyncio.run(go())
