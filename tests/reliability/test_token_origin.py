"""The GitHub token goes to the configured API origin only (issue 18, item 2).

Two real local HTTP servers on two ports: the API (A) and an attacker (B). A's release pages link `rel="next"`
(or redirect, or a cached page's `next_url` points) elsewhere; B must never see the token, and a pagination link
that leaves A's origin (scheme, host or port) fails the listing instead of being followed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from obsplan.compiler.sources.api_origin import same_origin
from obsplan.compiler.sources.github import GitHubSource
from obsplan.compiler.sources.http_cache import CacheEntry, HttpCache, RequestKey
from obsplan.compiler.sources.http_client import client_for
from obsplan.compiler.sources.releases import SourceUnavailable

from tests.reliability.conftest import FUZZ_EXAMPLES, Record

TOKEN = "ghp_secret_token_value"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
FIRST = "/repos/o/r/releases?per_page=100"
RELEASE = {"tag_name": "v1.0.0", "published_at": "2026-01-01T00:00:00Z", "assets": []}


@dataclass
class Server:
    """Per path: (status, body, extra headers); every request recorded as (path, headers)."""

    routes: dict[str, tuple[int, str, dict[str, str]]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tokens(self) -> list[str]:
        return [p for p, h in self.seen if TOKEN in h.get("authorization", "")]


@contextmanager
def serve() -> Iterator[Server]:
    srv = Server()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            srv.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, body, headers = srv.routes.get(self.path, (200, "[]", {}))
            data = body.encode()
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    srv.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Server, Server]]:
    with serve() as api, serve() as evil:
        yield api, evil


@pytest.fixture
def fresh(servers: tuple[Server, Server]) -> tuple[Server, Server]:
    api, evil = servers
    for box in (api.routes, api.seen, evil.routes, evil.seen):
        box.clear()
    return api, evil


def fetch(api: Server, cache_dir: Path | None = None) -> object:
    async def go() -> object:
        async with client_for(api.url, offline=False) as client:
            http = HttpCache(cache_dir, client, ttl=timedelta(hours=1), now=NOW)
            return await GitHubSource(http, api_url=api.url, token=TOKEN).fetch("o/r")

    return asyncio.run(go())


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="next"'}


def test_same_origin_pagination_carries_the_token(fresh: tuple[Server, Server]) -> None:
    api, _ = fresh
    api.routes[FIRST] = (200, json.dumps([RELEASE]), link(f"{api.url}/repos/o/r/releases?page=2"))
    api.routes["/repos/o/r/releases?page=2"] = (200, json.dumps([{**RELEASE, "tag_name": "v0.9.0"}]), {})
    data = fetch(api)
    assert [r.tag for r in data.releases] == ["v1.0.0", "v0.9.0"]  # type: ignore[attr-defined]
    assert api.tokens() == [FIRST, "/repos/o/r/releases?page=2"]


@pytest.mark.parametrize(
    "elsewhere",
    [
        "{evil}/steal?page=2",  # another port, same host
        "http://localhost:{api_port}/repos/o/r/releases?page=2",  # another host name, same port
        "https://127.0.0.1:{api_port}/repos/o/r/releases?page=2",  # another scheme
        "http://x@127.0.0.1:{evil_port}/steal",  # credentials in the link
        "//127.0.0.1:{evil_port}/steal",  # scheme-relative
        "/repos/o/r/releases?page=2",  # relative: not an absolute API URL
        "http://127.0.0.1:99999/steal",  # a port that is not one
    ],
)
def test_pagination_link_elsewhere_is_an_error(fresh: tuple[Server, Server], elsewhere: str) -> None:
    api, evil = fresh
    target = elsewhere.format(evil=evil.url, api_port=api.port, evil_port=evil.port)
    api.routes[FIRST] = (200, json.dumps([RELEASE]), link(target))
    with pytest.raises(SourceUnavailable, match="leaves the GitHub API origin"):
        fetch(api)
    assert evil.seen == [] and api.seen[0][0] == FIRST and len(api.seen) == 1


def test_cached_next_url_is_checked_the_same_way(fresh: tuple[Server, Server], tmp_path: Path) -> None:
    """A fresh cached first page whose next_url points at B: no request at all, the listing fails."""
    api, evil = fresh

    async def plant() -> None:
        http = HttpCache(tmp_path, None, ttl=timedelta(hours=1), now=NOW)
        key = RequestKey("GET", f"{api.url}{FIRST}")
        entry = CacheEntry(
            method="GET",
            url=key.url,
            request_sha256=None,
            status=200,
            next_url=f"{evil.url}/steal",
            fetched_at=NOW,
            body=json.dumps([RELEASE]),
        )
        http.store(key, entry)

    asyncio.run(plant())
    with pytest.raises(SourceUnavailable, match="leaves the GitHub API origin"):
        fetch(api, tmp_path)
    assert evil.seen == [] and api.seen == []


def test_a_redirect_elsewhere_never_carries_the_token(fresh: tuple[Server, Server]) -> None:
    api, evil = fresh
    api.routes[FIRST] = (302, "", {"Location": f"{evil.url}/steal"})
    evil.routes["/steal"] = (200, json.dumps([RELEASE]), {})
    fetch(api)
    assert [p for p, _ in evil.seen] == ["/steal"] and evil.tokens() == []


HOSTS = st.sampled_from(["127.0.0.1", "localhost", "127.0.0.1.", "LOCALHOST", "[::1]", "u:p@127.0.0.1", "0x7f.1"])


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    scheme=st.sampled_from(["http", "HTTP", "https", "ftp", ""]),
    host=HOSTS,
    port=st.sampled_from(["api", "evil", "", "80", "0"]),
    path=st.text(alphabet="/?#&=.%@abc:", max_size=12),
)
def test_fuzz_next_links(
    outcomes: Record, servers: tuple[Server, Server], scheme: str, host: str, port: str, path: str
) -> None:
    """Whatever the link, the token reaches only the API's own origin, and B is asked nothing."""
    api, evil = servers
    for box in (api.routes, api.seen, evil.seen):
        box.clear()
    number = {"api": str(api.port), "evil": str(evil.port)}.get(port, port)
    target = f"{scheme}{'://' if scheme else '//'}{host}{':' + number if number else ''}/{path}"
    api.routes[FIRST] = (200, json.dumps([RELEASE]), link(target))
    try:
        fetch(api)
        followed = True
    except SourceUnavailable:
        followed = False
    ok = evil.seen == [] and followed == same_origin(target, api.url)
    ok = ok and all(p == FIRST or same_origin(f"{api.url}{p}", api.url) for p in api.tokens())
    outcomes("github: generated next links", 0 if ok else 1, ok)
    assert ok, (target, followed, evil.seen)


def test_the_transport_strips_the_token_for_any_other_origin(fresh: tuple[Server, Server]) -> None:
    """The fence under httpx: whatever a caller puts in the headers, B never receives the token; A does."""
    import httpx
    from obsplan.compiler.sources.credential_fence import CredentialFence

    api, evil = fresh

    async def go() -> None:
        fence = CredentialFence(httpx.AsyncHTTPTransport(), api.url)
        async with httpx.AsyncClient(transport=fence) as client:
            for url in (f"{evil.url}/x", f"{api.url}/y", f"http://localhost:{api.port}/z"):
                await client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})

    asyncio.run(go())
    assert evil.tokens() == [] and api.tokens() == ["/y"] and [p for p, _ in api.seen] == ["/y", "/z"]
