"""GitHub Releases API source with an ETag cache.

`GET {api}/repos/{owner}/{repo}/releases?per_page=100`, following `Link: rel="next"`; a repository that
publishes no releases is read from `/tags`. Responses are cached per page with their ETag in
`OBSPLAN_CACHE_DIR`; within the TTL no request is made, after it each page is revalidated with
`If-None-Match` (a 304 costs no rate limit). The token is sent as `Authorization: Bearer` and never stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obsplan.fsio import write_atomic

from .releases import Release, ReleaseData, SourceUnavailable

if TYPE_CHECKING:
    import httpx

DEFAULT_API = "https://api.github.com"
_LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass
class CachedRepo:
    fetched_at: datetime
    pages: list[dict[str, Any]]  # {"url", "etag", "body", "next"}
    kind: str  # "releases" | "tags"

    def releases(self) -> list[Release]:
        items = [item for page in self.pages for item in page["body"]]
        return [_release_from_api(i) if self.kind == "releases" else _release_from_tag(i) for i in items]


class ReleaseCache:
    """One JSON file per repository under `<dir>/<namespace>/` (`github/`, `grafana_com/`); written atomically,
    no secrets inside."""

    def __init__(self, directory: Path, namespace: str = "github"):
        self.dir = directory / namespace

    def _path(self, repo: str) -> Path:
        return self.dir / (repo.replace("/", "__") + ".json")

    def load(self, repo: str) -> CachedRepo | None:
        try:
            raw = json.loads(self._path(repo).read_text())
            return CachedRepo(datetime.fromisoformat(raw["fetched_at"]), raw["pages"], raw["kind"])
        except (OSError, ValueError, KeyError):
            return None

    def store(self, repo: str, entry: CachedRepo) -> None:
        data = {"fetched_at": entry.fetched_at.isoformat(), "kind": entry.kind, "pages": entry.pages}
        write_atomic(self._path(repo), json.dumps(data, sort_keys=True))


class GitHubSource:
    def __init__(
        self,
        client: httpx.AsyncClient | None,
        *,
        api_url: str = DEFAULT_API,
        token: str | None = None,
        cache: ReleaseCache | None = None,
        ttl: timedelta = timedelta(minutes=15),
        now: datetime,
        offline: bool = False,
    ):
        self.client = client
        self.api = api_url.rstrip("/")
        self.token = token
        self.cache = cache
        self.ttl = ttl
        self.now = now
        self.offline = offline

    async def fetch(self, repo: str) -> ReleaseData:
        cached = self.cache.load(repo) if self.cache else None
        if cached and not self.offline and self.now - cached.fetched_at < self.ttl:
            return self._data(repo, cached, "github", f"GitHub {cached.kind} API")
        if cached and self.offline:
            return self._data(repo, cached, "cache", "cached GitHub response (offline)")
        if self.offline:
            raise SourceUnavailable("offline and no cached release data")
        try:
            entry = await self._fetch_pages(repo, "releases", cached)
            if not entry.pages or not entry.pages[0]["body"]:
                entry = await self._fetch_pages(repo, "tags", cached if cached and cached.kind == "tags" else None)
        except SourceUnavailable as exc:
            if cached:
                return self._data(repo, cached, "cache", f"stale cache used: {exc}")
            raise
        if self.cache:
            self.cache.store(repo, entry)
        return self._data(repo, entry, "github", f"GitHub {entry.kind} API")

    def _data(self, repo: str, entry: CachedRepo, kind: str, detail: str) -> ReleaseData:
        return ReleaseData(
            repo=repo,
            releases=entry.releases(),
            source=kind,  # type: ignore[arg-type]
            as_of=entry.fetched_at.date().isoformat(),
            detail=detail,
        )

    async def _fetch_pages(self, repo: str, kind: str, cached: CachedRepo | None) -> CachedRepo:
        old = {p["url"]: p for p in cached.pages} if cached and cached.kind == kind else {}
        url: str | None = f"{self.api}/repos/{repo}/{kind}?per_page=100"
        pages: list[dict[str, Any]] = []
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            prev = old.get(url)
            resp = await self._get(url, prev["etag"] if prev else None)
            if resp.status_code == 304 and prev:
                pages.append(prev)
                url = prev.get("next")
                continue
            body = resp.json()
            if not isinstance(body, list):
                raise SourceUnavailable(f"unexpected response from {url}")
            m = _LINK_NEXT.search(resp.headers.get("link", ""))
            nxt = m.group(1) if m else None
            pages.append({"url": url, "etag": resp.headers.get("etag"), "body": body, "next": nxt})
            url = nxt
        return CachedRepo(self.now, pages, kind)

    async def _get(self, url: str, etag: str | None) -> httpx.Response:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if etag:
            headers["If-None-Match"] = etag
        import httpx  # only when a request is made: offline runs never load it

        try:
            if self.client is None:
                raise SourceUnavailable("offline: no HTTP client")
            resp = await self.client.get(url, headers=headers)
        except httpx.TimeoutException:
            raise SourceUnavailable("GitHub API timed out") from None
        except httpx.TransportError as exc:
            raise SourceUnavailable(f"GitHub API unreachable ({type(exc).__name__})") from None
        remaining = resp.headers.get("x-ratelimit-remaining")
        if resp.status_code in (403, 429) and (remaining == "0" or resp.status_code == 429):
            raise SourceUnavailable(f"GitHub API rate limit exceeded (HTTP {resp.status_code})")
        if resp.status_code >= 500:
            raise SourceUnavailable(f"GitHub API error HTTP {resp.status_code}")
        if resp.status_code == 404:
            raise SourceUnavailable("repository not found on GitHub (HTTP 404): check github_repo")
        if resp.status_code == 401:
            raise SourceUnavailable("GitHub rejected the token (HTTP 401): check GITHUB_TOKEN")
        if resp.status_code not in (200, 304):
            raise SourceUnavailable(f"GitHub API answered HTTP {resp.status_code}")
        return resp


def _release_from_api(item: dict[str, Any]) -> Release:
    assets = {a["name"]: a["browser_download_url"] for a in item.get("assets") or []}
    published = item.get("published_at") or item.get("created_at")
    return Release(
        tag=item["tag_name"],
        published_at=published[:10] if published else None,
        prerelease=bool(item.get("prerelease")),
        draft=bool(item.get("draft")),
        assets=assets,
        body=item.get("body") or "",
    )


def _release_from_tag(item: dict[str, Any]) -> Release:
    return Release(tag=item["name"])
