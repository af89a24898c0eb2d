"""The one HTTP cache (compiler/sources/http_cache.py) against a scripted local server that counts requests: fresh,
stale (conditional request, 304), 404 kept for the TTL, immutable entries, offline, failures, POST keys, and
hostile cache files (a miss, never a crash)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from obsplan.compiler.sources.http_cache import Answer, CacheEntry, HttpCache, RequestKey, entry_path

from tests.http_origin import Origin, Route, serve_origin

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
TTL = timedelta(minutes=15)


@pytest.fixture
def origin() -> Iterator[Origin]:
    with serve_origin() as o:
        yield o


def lookup(
    cache: Path | None,
    url: str,
    *,
    now: datetime = NOW,
    offline: bool = False,
    immutable: bool = False,
    post: object = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    async def go() -> Answer:
        async with httpx.AsyncClient(timeout=5) as client:
            http = HttpCache(cache, client, ttl=TTL, now=now, offline=offline)
            if post is not None:
                return await http.post_json(url, post, headers=headers)
            return await http.get(url, headers=headers, immutable=immutable)

    return asyncio.run(go())


def stored(cache: Path, url: str) -> dict[str, Any]:
    return json.loads(entry_path(cache, RequestKey("GET", url)).read_text())  # type: ignore[no-any-return]


def test_fresh_inside_the_ttl_sends_nothing(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/a"] = Route(body="first")
    url = origin.url + "/a"
    first = lookup(tmp_path, url)
    assert first.origin == "fetched" and first.entry is not None and first.entry.body == "first"
    origin.routes["/a"] = Route(body="changed", etag='"v2"')
    again = lookup(tmp_path, url, now=NOW + TTL - timedelta(seconds=1))
    assert again.origin == "fresh" and again.entry == first.entry and origin.count() == 1
    entry = stored(tmp_path, url)
    assert (entry["format"], entry["url"], entry["status"], entry["etag"]) == ("obsplan-http-cache/1", url, 200, '"v1"')


def test_stale_sends_a_conditional_request_and_a_304_refreshes(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/a"] = Route(body="body")
    url = origin.url + "/a"
    lookup(tmp_path, url)
    later = NOW + TTL
    answer = lookup(tmp_path, url, now=later)
    (_, _, headers) = origin.requests[-1]
    assert headers["if-none-match"] == '"v1"' and answer.origin == "fetched"
    assert answer.entry is not None and answer.entry.body == "body" and answer.entry.fetched_at == later
    assert stored(tmp_path, url)["fetched_at"].startswith(later.isoformat()[:19])
    assert lookup(tmp_path, url, now=later + timedelta(minutes=1)).origin == "fresh"
    assert origin.count() == 2


def test_stale_with_a_changed_file_stores_the_new_answer(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/a"] = Route(body="old")
    url = origin.url + "/a"
    lookup(tmp_path, url)
    origin.routes["/a"] = Route(body="new", etag='"v2"')
    answer = lookup(tmp_path, url, now=NOW + TTL)
    assert answer.entry is not None and answer.entry.body == "new"
    assert stored(tmp_path, url)["etag"] == '"v2"'


def test_a_404_is_kept_for_the_ttl_then_asked_again(origin: Origin, tmp_path: Path) -> None:
    url = origin.url + "/missing"
    first = lookup(tmp_path, url)
    assert first.entry is not None and first.entry.status == 404 and not first.ok
    assert lookup(tmp_path, url, now=NOW + timedelta(minutes=5)).origin == "fresh"
    assert origin.count() == 1
    origin.routes["/missing"] = Route(body="published now")
    later = lookup(tmp_path, url, now=NOW + TTL)
    assert later.ok and later.entry is not None and later.entry.body == "published now" and origin.count() == 2


def test_immutable_entries_never_expire_but_their_404_does(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/sums"] = Route(body="abc  file")
    url = origin.url + "/sums"
    assert lookup(tmp_path, url, immutable=True).ok
    origin.routes["/sums"] = Route(body="changed", etag='"v2"')
    years = lookup(tmp_path, url, now=NOW + timedelta(days=3650), immutable=True)
    assert years.origin == "fresh" and years.entry is not None and years.entry.body == "abc  file"
    assert stored(tmp_path, url)["immutable"] is True
    gone = origin.url + "/not-yet"
    lookup(tmp_path, gone, immutable=True)
    assert lookup(tmp_path, gone, now=NOW + TTL, immutable=True).origin == "fetched"
    assert origin.count() == 3  # /sums once, /not-yet twice


def test_offline_answers_from_the_cache_only(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/a"] = Route(body="cached")
    url = origin.url + "/a"
    lookup(tmp_path, url)
    lookup(tmp_path, origin.url + "/missing")
    old = lookup(tmp_path, url, now=NOW + timedelta(days=30), offline=True)
    assert old.origin == "offline" and old.entry is not None and old.entry.body == "cached"
    gone = lookup(tmp_path, origin.url + "/missing", now=NOW + timedelta(days=30), offline=True)
    assert gone.entry is not None and gone.entry.status == 404
    miss = lookup(tmp_path, origin.url + "/never", offline=True)
    assert miss.entry is None and miss.failure is not None and miss.failure.offline
    no_client = asyncio.run(HttpCache(tmp_path, None, ttl=TTL, now=NOW).get(url))
    assert no_client.origin == "offline" and no_client.ok
    assert origin.count() == 2


@pytest.mark.parametrize(("status", "limited"), [(500, False), (429, True), (401, False)])
def test_a_failure_answers_with_the_stale_entry(origin: Origin, tmp_path: Path, status: int, limited: bool) -> None:
    origin.routes["/a"] = Route(body="kept")
    url = origin.url + "/a"
    lookup(tmp_path, url)
    origin.routes["/a"] = Route(status, "error", None)
    stale = lookup(tmp_path, url, now=NOW + TTL)
    assert stale.origin == "stale" and stale.entry is not None and stale.entry.body == "kept"
    assert stale.failure is not None and (stale.failure.status, stale.failure.rate_limited) == (status, limited)
    assert stored(tmp_path, url)["fetched_at"].startswith(NOW.isoformat()[:19])  # a failure does not refresh
    origin.routes["/b"] = Route(status, "error", None)
    none = lookup(tmp_path, origin.url + "/b", now=NOW)
    assert none.origin == "failed" and none.entry is None


def test_no_network_answers_with_the_stale_entry(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/a"] = Route(body="kept")
    lookup(tmp_path, origin.url + "/a")
    dead = "http://127.0.0.1:9/a"  # nothing listens on the discard port
    entry = CacheEntry.model_validate({**stored(tmp_path, origin.url + "/a"), "url": dead})
    HttpCache(tmp_path, None, ttl=TTL, now=NOW).store(RequestKey("GET", dead), entry)
    answer = lookup(tmp_path, dead, now=NOW + TTL)
    assert answer.origin == "stale" and answer.failure is not None and answer.failure.exception == "ConnectError"


def test_post_is_keyed_by_url_and_body(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/v1/query"] = Route(body='{"vulns": []}', etag=None)
    url = origin.url + "/v1/query"
    a = lookup(tmp_path, url, post={"version": "1", "package": {"name": "x"}})
    b = lookup(tmp_path, url, post={"version": "2", "package": {"name": "x"}})
    assert a.entry is not None and b.entry is not None and a.entry.request_sha256 != b.entry.request_sha256
    again = lookup(tmp_path, url, post={"package": {"name": "x"}, "version": "1"})  # same body, other key order
    assert again.origin == "fresh" and origin.count() == 2
    assert len(list((tmp_path / "http").rglob("*.json"))) == 2


def test_request_headers_are_sent_but_never_stored(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/a"] = Route()
    lookup(tmp_path, origin.url + "/a", headers={"Authorization": "Bearer ghp_secret_value"})
    assert origin.requests[0][2]["authorization"] == "Bearer ghp_secret_value"
    assert all("ghp_secret_value" not in f.read_text() for f in tmp_path.rglob("*") if f.is_file())


def _hostile(path: Path, kind: str, other_url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to("/dev/zero")
    elif kind == "other_url":  # a sound entry, but for another request
        entry = CacheEntry(
            method="GET", url=other_url, request_sha256=None, status=200, fetched_at=NOW, body="not this one"
        )
        path.write_text(entry.model_dump_json())
    else:
        path.write_bytes(
            {
                "garbage": b"\xff\xfe\x00not json",
                "truncated": b'{"format": "obsplan-http-cache/1", "url": ',
                "wrong_shape": b"[1, 2, 3]",
                "extra_key": json.dumps({"format": "x", "authorization": "y"}).encode(),
                "deep": b"[" * 5000 + b"]" * 5000,
                "naive_time": json.dumps(
                    {
                        "method": "GET",
                        "url": "u",
                        "request_sha256": None,
                        "status": 200,
                        "fetched_at": "2026-11-22T12:00:00",
                        "body": "",
                    }
                ).encode(),
            }[kind]
        )


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "truncated",
        "wrong_shape",
        "extra_key",
        "deep",
        "naive_time",
        "other_url",
        "directory",
        "fifo",
        "symlink",
    ],
)
def test_a_hostile_cache_file_is_a_miss(origin: Origin, tmp_path: Path, kind: str) -> None:
    origin.routes["/a"] = Route(body="real")
    url = origin.url + "/a"
    path = entry_path(tmp_path, RequestKey("GET", url))
    _hostile(path, kind, origin.url + "/other")
    offline = lookup(tmp_path, url, offline=True)
    assert offline.entry is None and offline.failure is not None and offline.failure.offline
    online = lookup(tmp_path, url)
    assert online.origin == "fetched" and online.entry is not None and online.entry.body == "real"
    assert origin.count() == 1
    if kind != "directory":  # the answer replaced the hostile file; a directory in its place is left alone
        assert CacheEntry.model_validate_json(path.read_text()) == online.entry


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_URL = "http://upstream.invalid/file"
_VALID = {
    "format": "obsplan-http-cache/1",
    "method": "GET",
    "url": _URL,
    "request_sha256": None,
    "status": 200,
    "etag": '"e"',
    "last_modified": None,
    "next_url": None,
    "immutable": False,
    "fetched_at": NOW.isoformat(),
    "body": "text",
}


def _mutated(data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["bytes", "json", "mutated"]))
    if kind == "bytes":
        return data.draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(data.draw(_JSON)).encode()
    entry = dict(_VALID)
    key = data.draw(st.sampled_from([*_VALID, "extra"]))
    if data.draw(st.booleans()):
        entry.pop(key, None)
    else:
        entry[key] = data.draw(_JSON)
    return json.dumps(entry).encode()


@settings(max_examples=int(os.environ.get("OBSPLAN_FUZZ_EXAMPLES", "50")), deadline=None)
@given(data=st.data())
def test_any_cache_file_is_an_entry_for_this_request_or_a_miss(data: st.DataObject) -> None:
    raw = _mutated(data)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        key = RequestKey("GET", _URL)
        path = entry_path(cache, key)
        path.parent.mkdir(parents=True)
        path.write_bytes(raw)
        answer = asyncio.run(HttpCache(cache, None, ttl=TTL, now=NOW).get(_URL))
        if answer.entry is None:
            assert answer.failure is not None and answer.failure.offline
        else:
            assert key.matches(answer.entry) and answer.entry.fetched_at.tzinfo is not None


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200),
    etag=st.none() | st.from_regex(r'"[a-z0-9]{1,12}"', fullmatch=True),
)
def test_any_answer_round_trips_through_the_file(origin: Origin, body: str, etag: str | None) -> None:
    origin.routes["/rt"] = Route(body=body, etag=etag)
    with tempfile.TemporaryDirectory() as tmp:
        fetched = lookup(Path(tmp), origin.url + "/rt")
        again = lookup(Path(tmp), origin.url + "/rt", offline=True)
    assert fetched.entry is not None and fetched.entry == again.entry and fetched.entry.body == body
