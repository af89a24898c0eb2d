"""grafana.com downloads API: Grafana's versions, and per version and platform the package URL and sha256.

    GET {api}/api/downloads/{product}/versions                              → {"items": [{"version", "releaseDate",
                                                                               "stable", "channels": {"stable"}}]}
    GET {api}/api/downloads/{product}/versions/{ver}/packages/{arch}/{os}   → {"url": ..., "sha256": ...}

(what public install scripts read: `jq -r .url`, `.sha256`). It sits behind the same release-source seam as
GitHub: a source in the chain that answers for the repositories whose component names a `downloads_api`
product, and passes the others on. From Grafana 12.3 the tarball name carries a CI build id that no template
can derive; here it comes with its checksum. Responses go through the one HTTP cache (`http_cache.py`): the
version list is revalidated after the TTL, packages are immutable entries kept for good (a published package
does not change). Offline: the cache only; without it the chain falls back to GitHub's data and the snapshot
(and then `artifact_urls`).
"""

from __future__ import annotations

from typing import Any

from obsplan.compiler.sources.http_cache import Answer, Failure, HttpCache
from obsplan.compiler.sources.releases import Release, ReleaseData, SourceUnavailable

from obsplan.kernel.versions import Version

DEFAULT_GRAFANA_API = "https://grafana.com"


class NotThisSource(SourceUnavailable):
    """The source does not serve this repository: the chain moves on without reporting a failure."""


class GrafanaComSource:
    def __init__(self, http: HttpCache, *, products: dict[str, str], api_url: str = DEFAULT_GRAFANA_API):
        self.http = http
        self.products = products  # GitHub repository → grafana.com product
        self.api = api_url.rstrip("/")

    @property
    def origin(self) -> str:
        return f"grafana.com downloads API ({self.api})"

    async def fetch(self, repo: str) -> ReleaseData:
        product = self.products.get(repo)
        if product is None:
            raise NotThisSource(f"{repo} is not served by grafana.com")
        url = f"{self.api}/api/downloads/{product}/versions"
        answer = await self.http.get(url, headers=_ACCEPT)
        if answer.entry is None or answer.entry.status != 200:
            if answer.failure is not None and answer.failure.offline:
                raise SourceUnavailable("offline and no cached grafana.com version list")
            raise SourceUnavailable(_why(answer, url))
        body = _json(answer)
        if body is None:
            raise SourceUnavailable(f"grafana.com sent no JSON for {url}")
        if self.http.offline:
            return self._data(repo, product, body, answer, "cache", "cached grafana.com response (offline)")
        if answer.failure is not None:
            return self._data(repo, product, body, answer, "cache", f"stale cache used: {_why(answer, url)}")
        return self._data(repo, product, body, answer, "grafana_com", self.origin)

    async def package(self, product: str, version: Version, platform: str) -> tuple[str, str] | None:
        """(url, sha256) of the Linux package of `version` for `platform`, or None when it cannot be had."""
        os_, arch = platform.split("-", 1)
        url = f"{self.api}/api/downloads/{product}/versions/{version}/packages/{arch}/{os_}"
        body = _json(await self.http.get(url, headers=_ACCEPT, immutable=True))
        if isinstance(body, dict) and isinstance(body.get("url"), str) and isinstance(body.get("sha256"), str):
            return body["url"], body["sha256"].lower()
        return None

    def _data(self, repo: str, product: str, body: Any, answer: Answer, kind: str, detail: str) -> ReleaseData:
        items = body.get("items", []) if isinstance(body, dict) else []
        assert answer.entry is not None
        return ReleaseData(
            repo=repo,
            releases=[_release(i, product) for i in items if isinstance(i, dict) and i.get("version")],
            source=kind,  # type: ignore[arg-type]
            as_of=answer.entry.fetched_at.date().isoformat(),
            detail=detail,
        )


_ACCEPT = {"Accept": "application/json"}


def _json(answer: Answer) -> Any:
    """The answer's JSON body, None when there is no 200 answer or it is not JSON."""
    if answer.entry is None or answer.entry.status != 200:
        return None
    try:
        return answer.entry.json_body()
    except ValueError:
        return None


def _why(answer: Answer, url: str) -> str:
    failure = answer.failure or Failure(status=answer.entry.status if answer.entry else None)
    if failure.timeout:
        return "grafana.com timed out"
    if failure.status is None:
        return f"grafana.com unreachable ({failure.exception})"
    return f"grafana.com answered HTTP {failure.status} for {url}"


def _release(item: dict[str, Any], product: str) -> Release:
    stable = item.get("stable", (item.get("channels") or {}).get("stable", True))
    date = item.get("releaseDate")
    return Release(
        tag=f"v{item['version']}",
        published_at=date[:10] if isinstance(date, str) and date else None,
        prerelease=not stable,
        downloads_api=product,
    )
