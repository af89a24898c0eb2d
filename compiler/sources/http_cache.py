"""The compiler's one HTTP cache, used by every fetcher (GitHub pages, grafana.com, CHANGELOGs, OSV queries,
checksum files).

Layout: one JSON file per request, `<OBSPLAN_CACHE_DIR>/http/<host>/<sha256 of the request key>.json`, holding a
`CacheEntry` (format, method, url, request body hash, status, ETag, Last-Modified, Link rel="next", immutable,
fetched_at, body). The request key is `METHOD URL` and, for a POST, the sha256 of the body sent. Request
headers (the token) are never stored. Files are written atomically (`obsplan.safeio.fsio.write_atomic`).

Lookup rule (`HttpCache.get` / `HttpCache.post_json`):
- offline (or no HTTP client): the entry whatever its age, a cached 404 included; no entry is a miss. No request.
- fresh: younger than the TTL, or an immutable 200 (a checksum file, a published grafana.com package): no request.
- otherwise one request, conditional (`If-None-Match`, `If-Modified-Since`) when an entry exists. A 200 or a 404
  ("upstream has no such file", kept for the TTL like any answer, never for good) is stored; a 304 refreshes the
  entry's `fetched_at`; anything else (rate limit, 401, 5xx, timeout, no network) is a failure, answered with
  the stale entry when there is one.
- a file that is not a regular file, too large, not JSON, not a valid entry, or for another request is a miss,
  never an error.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

import obsplan.safeio.bounded_http as bounded_http
import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.fsio import write_atomic

if TYPE_CHECKING:
    import httpx

ENTRY_FORMAT: Literal["obsplan-http-cache/1"] = "obsplan-http-cache/1"
_LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# One answer, whatever the server does: read whole within this many seconds of wall time (a byte-a-second drip,
# headers that never end) and at most this many bytes once decoded (a gzip bomb); else a failure.
ANSWER_DEADLINE = 60.0
ANSWER_LIMIT = jsonload.MAX_BYTES


class CacheEntry(BaseModel):
    """One cached answer: a 200 with its body, or a 404 (empty body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["obsplan-http-cache/1"] = ENTRY_FORMAT
    method: Literal["GET", "POST"]
    url: str
    request_sha256: str | None  # sha256 of a POST body; None for a GET
    status: Literal[200, 404]
    etag: str | None = None
    last_modified: str | None = None
    next_url: str | None = None  # the response's Link rel="next" (GitHub pagination)
    immutable: bool = False
    fetched_at: AwareDatetime
    body: str

    def json_body(self) -> Any:
        """The body parsed as JSON, size and depth capped (ValueError when it is not usable JSON)."""
        try:
            return jsonload.loads(self.body.encode(), self.url, "HTTP answer")
        except ObsplanError as exc:
            raise ValueError(exc.message) from None


@dataclass(frozen=True)
class Failure:
    """Why a request gave no usable answer: an HTTP status, or an exception (class name) before any answer."""

    status: int | None = None
    exception: str | None = None
    timeout: bool = False
    rate_limited: bool = False
    offline: bool = False

    def describe(self) -> str:
        if self.offline:
            return "offline"
        return f"HTTP {self.status}" if self.status is not None else str(self.exception)


@dataclass(frozen=True)
class Answer:
    """What a lookup gives: the entry (None on a miss), how it was had, and the failure when a request failed."""

    entry: CacheEntry | None
    origin: Literal["fresh", "fetched", "stale", "offline", "failed"]
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.entry is not None and self.entry.status == 200


@dataclass(frozen=True)
class RequestKey:
    method: Literal["GET", "POST"]
    url: str
    request_sha256: str | None = None

    def matches(self, entry: CacheEntry) -> bool:
        return (entry.method, entry.url, entry.request_sha256) == (self.method, self.url, self.request_sha256)


def entry_path(cache_dir: Path, key: RequestKey) -> Path:
    """Where the entry of `key` lives under the cache directory (`OBSPLAN_CACHE_DIR`)."""
    host = _UNSAFE.sub("_", urlsplit(key.url).netloc) or "_"
    digest = hashlib.sha256(f"{key.method} {key.url} {key.request_sha256 or ''}".encode()).hexdigest()
    return cache_dir / "http" / host / f"{digest}.json"


def read_entry(path: Path) -> CacheEntry | None:
    """The entry in `path`, or None for anything that is not a sound entry file (a miss, never an error)."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        return CacheEntry.model_validate(jsonload.read(path, "cache entry"))
    except (OSError, ObsplanError, ValidationError, ValueError, RecursionError):
        return None


class HttpCache:
    """Answers GET and JSON POST requests through the cache directory (None: no cache, every lookup asks)."""

    def __init__(
        self,
        cache_dir: Path | None,
        client: httpx.AsyncClient | None,
        *,
        ttl: timedelta,
        now: datetime,
        offline: bool = False,
    ):
        self.cache_dir = cache_dir
        self.client = client
        self.ttl = ttl
        self.now = now
        self.offline = offline or client is None

    async def get(self, url: str, *, headers: dict[str, str] | None = None, immutable: bool = False) -> Answer:
        return await self._lookup(RequestKey("GET", url), None, headers or {}, immutable)

    async def post_json(self, url: str, body: object, *, headers: dict[str, str] | None = None) -> Answer:
        content = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        key = RequestKey("POST", url, hashlib.sha256(content).hexdigest())
        sent = {"Content-Type": "application/json", **(headers or {})}
        return await self._lookup(key, content, sent, False)

    def load(self, key: RequestKey) -> CacheEntry | None:
        if self.cache_dir is None:
            return None
        entry = read_entry(entry_path(self.cache_dir, key))
        return entry if entry is not None and key.matches(entry) else None

    def store(self, key: RequestKey, entry: CacheEntry) -> None:
        """Best effort: a cache that cannot be written (read-only, a directory where the file goes) costs a
        request next time, never the plan."""
        if self.cache_dir is None:
            return
        try:
            write_atomic(entry_path(self.cache_dir, key), entry.model_dump_json(indent=1) + "\n")
        except OSError:
            return

    def is_fresh(self, entry: CacheEntry, immutable: bool) -> bool:
        if immutable and entry.status == 200:
            return True
        return timedelta(0) <= self.now - entry.fetched_at < self.ttl

    async def _lookup(self, key: RequestKey, content: bytes | None, headers: dict[str, str], immutable: bool) -> Answer:
        cached = self.load(key)
        if self.offline:
            return Answer(cached, "offline", None if cached else Failure(offline=True))
        if cached is not None and self.is_fresh(cached, immutable):
            return Answer(cached, "fresh")
        resp_or_failure = await self._send(key, content, {**headers, **_conditional(cached)})
        if isinstance(resp_or_failure, Failure):
            return Answer(cached, "stale" if cached else "failed", resp_or_failure)
        entry = self._answer_entry(key, resp_or_failure, cached, immutable)
        if entry is None:
            return Answer(cached, "stale" if cached else "failed", _status_failure(resp_or_failure))
        self.store(key, entry)
        return Answer(entry, "fetched")

    def _answer_entry(
        self, key: RequestKey, resp: httpx.Response, cached: CacheEntry | None, immutable: bool
    ) -> CacheEntry | None:
        """The entry a response makes (a 304 refreshes the cached one), or None when it is a failure."""
        if resp.status_code == 304 and cached is not None:
            return cached.model_copy(update={"fetched_at": self.now, "etag": resp.headers.get("etag") or cached.etag})
        if resp.status_code not in (200, 404):
            return None
        nxt = _LINK_NEXT.search(resp.headers.get("link", ""))
        return CacheEntry(
            method=key.method,
            url=key.url,
            request_sha256=key.request_sha256,
            status=200 if resp.status_code == 200 else 404,
            etag=resp.headers.get("etag"),
            last_modified=resp.headers.get("last-modified"),
            next_url=nxt.group(1) if nxt and resp.status_code == 200 else None,
            immutable=immutable,
            fetched_at=self.now,
            body=resp.text if resp.status_code == 200 else "",
        )

    async def _send(self, key: RequestKey, content: bytes | None, headers: dict[str, str]) -> httpx.Response | Failure:
        import httpx  # only when a request is made: offline runs never load it

        assert self.client is not None  # self.offline otherwise
        try:
            return await bounded_http.fetch(
                self.client,
                key.method,
                key.url,
                content=content,
                headers=headers,
                follow_redirects=True,
                limit=ANSWER_LIMIT,
                deadline=ANSWER_DEADLINE,
            )
        except (httpx.TimeoutException, TimeoutError) as exc:
            return Failure(exception=type(exc).__name__, timeout=True)
        except bounded_http.BodyTooLarge as exc:
            return Failure(exception=str(exc))
        except httpx.HTTPError as exc:
            return Failure(exception=type(exc).__name__)


def _conditional(cached: CacheEntry | None) -> dict[str, str]:
    if cached is None:
        return {}
    if cached.etag:
        return {"If-None-Match": cached.etag}
    return {"If-Modified-Since": cached.last_modified} if cached.last_modified else {}


def _status_failure(resp: httpx.Response) -> Failure:
    from obsplan.compiler.sources.ratelimit import is_rate_limited

    return Failure(status=resp.status_code, rate_limited=is_rate_limited(resp))
