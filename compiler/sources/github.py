"""GitHub Releases API source, through the one HTTP cache (`http_cache.py`).

`GET {api}/repos/{owner}/{repo}/releases?per_page=100`, following `Link: rel="next"`; a repository that
publishes no releases is read from `/tags`. Each page is one cache entry: within the TTL no request is made,
after it each page is revalidated with `If-None-Match` (a 304 costs no rate limit); a failed request falls back
to the stale page. The token is sent as `Authorization: Bearer` and never stored, and only to the API's origin: a
next link (fetched or cached) to another scheme, host or port fails the listing (`api_origin.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from obsplan.compiler.sources.api_origin import same_origin
from obsplan.compiler.sources.http_cache import Answer, Failure, HttpCache
from obsplan.compiler.sources.releases import Release, ReleaseData, SourceUnavailable

DEFAULT_API = "https://api.github.com"
MAX_PAGES = 50  # 5,000 releases: more is a server paginating forever
NOT_FOUND = "repository not found on GitHub (HTTP 404): check github_repo"


@dataclass
class Listing:
    """The items of every page of one listing (`releases` or `tags`), the oldest page's date, and the failure
    that made a stale page stand in (None when every page is fresh or was fetched now)."""

    kind: str
    items: list[dict[str, Any]]
    fetched_at: datetime
    failure: Failure | None

    def releases(self) -> tuple[list[Release], list[str]]:
        """The releases of the listing, and a warning for each item skipped as malformed (a field of the wrong
        JSON type, a missing tag): one bad release never costs the others."""
        out, skipped = [], []
        for i, item in enumerate(self.items):
            try:
                out.append(_release_from_api(item) if self.kind == "releases" else _release_from_tag(item))
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                skipped.append(f"{self.kind} item {i} skipped: malformed ({type(exc).__name__}: {str(exc)[:80]})")
        if len(skipped) > 3:
            skipped = [*skipped[:3], f"and {len(skipped) - 3} more malformed {self.kind} item(s) skipped"]
        return out, skipped


class GitHubSource:
    def __init__(self, http: HttpCache, *, api_url: str = DEFAULT_API, token: str | None = None):
        self.http = http
        self.api = api_url.rstrip("/")
        self.token = token

    async def fetch(self, repo: str) -> ReleaseData:
        listing = await self._listing(repo, "releases")
        if not listing.items:
            listing = await self._listing(repo, "tags")
        if self.http.offline:
            return self._data(repo, listing, "cache", "cached GitHub response (offline)")
        if listing.failure is not None:
            return self._data(repo, listing, "cache", f"stale cache used: {_why(listing.failure)}")
        return self._data(repo, listing, "github", f"GitHub {listing.kind} API")

    def _data(self, repo: str, listing: Listing, kind: str, detail: str) -> ReleaseData:
        releases, skipped = listing.releases()
        return ReleaseData(
            repo=repo,
            releases=releases,
            warnings=skipped,
            source=kind,  # type: ignore[arg-type]
            as_of=listing.fetched_at.date().isoformat(),
            detail=detail,
        )

    async def _listing(self, repo: str, kind: str) -> Listing:
        url: str | None = f"{self.api}/repos/{repo}/{kind}?per_page=100"
        listing = Listing(kind, [], self.http.now, None)
        seen: set[str] = set()
        while url and url not in seen:
            if len(seen) >= MAX_PAGES:
                raise SourceUnavailable(f"more than {MAX_PAGES} pages of {kind} (a pagination loop?)")
            seen.add(url)
            answer = await self.http.get(url, headers=self._headers())
            listing.items.extend(_page_items(answer, url))
            assert answer.entry is not None  # _page_items raised otherwise
            listing.fetched_at = min(listing.fetched_at, answer.entry.fetched_at)
            listing.failure = listing.failure or answer.failure
            url = _next_page(answer.entry.next_url, self.api, url)
        return listing

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def _next_page(next_url: str | None, api: str, url: str) -> str | None:
    """The next page's URL, refused (SourceUnavailable) when it leaves the API's origin: the token goes nowhere else."""
    if next_url is not None and not same_origin(next_url, api):
        shown = next_url if len(next_url) <= 120 else next_url[:117] + "..."
        raise SourceUnavailable(f"pagination link {shown!r} from {url} leaves the GitHub API origin {api}")
    return next_url


def _page_items(answer: Answer, url: str) -> list[dict[str, Any]]:
    """The page's items, or SourceUnavailable saying why there are none to be had."""
    if answer.entry is None:
        assert answer.failure is not None
        raise SourceUnavailable(
            "offline and no cached release data" if answer.failure.offline else _why(answer.failure)
        )
    if answer.entry.status == 404:
        raise SourceUnavailable(NOT_FOUND)
    try:
        body = answer.entry.json_body()
    except ValueError:
        body = None
    if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
        raise SourceUnavailable(f"unexpected response from {url}")
    return body


def _why(failure: Failure) -> str:
    if failure.rate_limited:
        return f"GitHub API rate limit exceeded (HTTP {failure.status})"
    if failure.timeout:
        return "GitHub API timed out"
    if failure.status is None:
        return f"GitHub API unreachable ({failure.exception})"
    if failure.status >= 500:
        return f"GitHub API error HTTP {failure.status}"
    if failure.status == 401:
        return "GitHub rejected the token (HTTP 401): check GITHUB_TOKEN"
    return f"GitHub API answered HTTP {failure.status}"


def _typed(item: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = item.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise TypeError(f"{key} is {type(value).__name__}")
    return value


def _release_from_api(item: dict[str, Any]) -> Release:
    assets = {}
    raw_assets = _typed(item, "assets", list, [])
    for a in raw_assets:
        if not isinstance(a, dict):
            raise TypeError(f"an asset is {type(a).__name__}")
        assets[_typed(a, "name", str, "")] = _typed(a, "browser_download_url", str, "")
    published = _typed(item, "published_at", str) or _typed(item, "created_at", str)
    tag = _typed(item, "tag_name", str)
    if not tag:
        raise KeyError("tag_name")
    return Release(
        tag=tag,
        published_at=published[:10] if published else None,
        prerelease=_typed(item, "prerelease", bool, False),
        draft=_typed(item, "draft", bool, False),
        assets={k: v for k, v in assets.items() if k and v},
        body=_typed(item, "body", str, ""),
    )


def _release_from_tag(item: dict[str, Any]) -> Release:
    tag = _typed(item, "name", str)
    if not tag:
        raise KeyError("name")
    return Release(tag=tag)
