"""grafana.com downloads API: Grafana's versions, and per version and platform the package URL and sha256.

    GET {api}/api/downloads/{product}/versions                              → {"items": [{"version", "releaseDate",
                                                                               "stable", "channels": {"stable"}}]}
    GET {api}/api/downloads/{product}/versions/{ver}/packages/{arch}/{os}   → {"url": ..., "sha256": ...}

(what public install scripts read: `jq -r .url`, `.sha256`). It sits behind the same release-source seam as
GitHub: a source in the chain that answers for the repositories whose component names a `downloads_api`
product, and passes the others on. From Grafana 12.3 the tarball name carries a CI build id that no template
can derive; here it comes with its checksum. Responses use the GitHub source's cache format (`ReleaseCache`,
under `grafana_com/`): the version list is revalidated after the TTL, packages are kept for good (a published
package does not change). Offline: the cache only; without it the chain falls back to GitHub's data and the
snapshot (and then `artifact_urls`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from obsplan.versions import Version

from .github import CachedRepo, ReleaseCache
from .releases import Release, ReleaseData, SourceUnavailable

if TYPE_CHECKING:
    import httpx

DEFAULT_GRAFANA_API = "https://grafana.com"


class NotThisSource(SourceUnavailable):
    """The source does not serve this repository: the chain moves on without reporting a failure."""


class GrafanaComSource:
    def __init__(
        self,
        client: httpx.AsyncClient | None,
        *,
        products: dict[str, str],
        api_url: str = DEFAULT_GRAFANA_API,
        cache: ReleaseCache | None = None,
        ttl: timedelta = timedelta(minutes=15),
        now: datetime,
        offline: bool = False,
    ):
        self.client = client
        self.products = products  # GitHub repository → grafana.com product
        self.api = api_url.rstrip("/")
        self.cache = cache
        self.ttl = ttl
        self.now = now
        self.offline = offline or client is None

    @property
    def origin(self) -> str:
        return f"grafana.com downloads API ({self.api})"

    async def fetch(self, repo: str) -> ReleaseData:
        product = self.products.get(repo)
        if product is None:
            raise NotThisSource(f"{repo} is not served by grafana.com")
        key = f"{product}/versions"
        cached = self.cache.load(key) if self.cache else None
        if cached and (self.offline or self.now - cached.fetched_at < self.ttl):
            return self._data(repo, product, cached, "cache" if self.offline else "grafana_com")
        if self.offline:
            raise SourceUnavailable("offline and no cached grafana.com version list")
        url = f"{self.api}/api/downloads/{product}/versions"
        try:
            entry = await self._get_cached(url, cached)
        except SourceUnavailable as exc:
            if cached:
                return self._data(repo, product, cached, "cache", f"stale cache used: {exc}")
            raise
        if self.cache:
            self.cache.store(key, entry)
        return self._data(repo, product, entry, "grafana_com")

    async def package(self, product: str, version: Version, platform: str) -> tuple[str, str] | None:
        """(url, sha256) of the Linux package of `version` for `platform`, or None when it cannot be had."""
        os_, arch = platform.split("-", 1)
        key = f"{product}/{version}/{os_}_{arch}"
        cached = self.cache.load(key) if self.cache else None
        if cached is None and not self.offline:
            url = f"{self.api}/api/downloads/{product}/versions/{version}/packages/{arch}/{os_}"
            try:
                cached = await self._get_cached(url, None)
            except SourceUnavailable:
                return None
            if self.cache:
                self.cache.store(key, cached)
        body = cached.pages[0]["body"] if cached else None
        if isinstance(body, dict) and isinstance(body.get("url"), str) and isinstance(body.get("sha256"), str):
            return body["url"], body["sha256"].lower()
        return None

    def _data(self, repo: str, product: str, entry: CachedRepo, kind: str, note: str = "") -> ReleaseData:
        items = entry.pages[0]["body"].get("items", []) if isinstance(entry.pages[0]["body"], dict) else []
        return ReleaseData(
            repo=repo,
            releases=[_release(i, product) for i in items if isinstance(i, dict) and i.get("version")],
            source=kind,  # type: ignore[arg-type]
            as_of=entry.fetched_at.date().isoformat(),
            detail=note or ("cached grafana.com response (offline)" if kind == "cache" else self.origin),
        )

    async def _get_cached(self, url: str, cached: CachedRepo | None) -> CachedRepo:
        prev = cached.pages[0] if cached else None
        headers = {"Accept": "application/json"}
        if prev and prev.get("etag"):
            headers["If-None-Match"] = prev["etag"]
        import httpx  # only when a request is made: offline runs never load it

        assert self.client is not None

        try:
            resp = await self.client.get(url, headers=headers)
        except httpx.TimeoutException:
            raise SourceUnavailable("grafana.com timed out") from None
        except httpx.TransportError as exc:
            raise SourceUnavailable(f"grafana.com unreachable ({type(exc).__name__})") from None
        if resp.status_code == 304 and prev:
            return CachedRepo(self.now, [prev], "grafana_com")
        if resp.status_code != 200:
            raise SourceUnavailable(f"grafana.com answered HTTP {resp.status_code} for {url}")
        try:
            body: Any = resp.json()
        except ValueError:
            raise SourceUnavailable(f"grafana.com sent no JSON for {url}") from None
        return CachedRepo(
            self.now, [{"url": url, "etag": resp.headers.get("etag"), "body": body, "next": None}], "grafana_com"
        )


def _release(item: dict[str, Any], product: str) -> Release:
    stable = item.get("stable", (item.get("channels") or {}).get("stable", True))
    date = item.get("releaseDate")
    return Release(
        tag=f"v{item['version']}",
        published_at=date[:10] if isinstance(date, str) and date else None,
        prerelease=not stable,
        downloads_api=product,
    )
