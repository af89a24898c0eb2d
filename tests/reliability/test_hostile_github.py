"""The GitHub Releases API client against a hostile server (issue 18): a page that is not a list, fields of the
wrong JSON type, nesting 100,000 deep, a byte-a-second drip, endless headers, a gzip bomb. One bad release is
skipped with a warning; a page that cannot be used makes the source unavailable (the plan falls back, as on any
outage); every answer is bounded in time and decoded bytes. Through `obsplan plan` too: never exit 3."""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import obsplan.compiler.sources.http_cache as http_cache
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from obsplan.compiler.sources.github import GitHubSource, Listing
from obsplan.compiler.sources.http_cache import HttpCache
from obsplan.compiler.sources.http_client import client_for
from obsplan.compiler.sources.releases import ReleaseData, SourceUnavailable, candidates

from obsplan.cli.main import main
from tests.reliability.conftest import FUZZ_EXAMPLES, Record, no_hang
from tests.reliability.hostile_http import hostile_server

GOOD = {"tag_name": "v2.0.0", "published_at": "2026-01-01T00:00:00Z", "assets": [], "body": "fine"}
MIXED = [
    {"tag_name": 5},
    {"tag_name": "v1.0.0", "assets": "x"},
    {"tag_name": "v1.1.0", "assets": [{"name": 1, "browser_download_url": "u"}]},
    {"tag_name": "v1.2.0", "prerelease": "yes"},
    {"tag_name": "v1.3.0", "body": ["not", "text"]},
    {"tag_name": "v1.4.0", "published_at": 20260101},
    {"tag_name": "v1.5.0", "assets": [7]},
    {"name": "v1.6.0"},
    GOOD,
]
BODIES: dict[str, bytes] = {
    "object": b'{"message": "hello"}',
    "numbers": b"[1, 2, 3]",
    "null": b"null",
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "nesteditem": b'[{"tag_name": "v1.0.0", "body": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]",
    "notjson": b"<html>rate limited</html>",
    "notutf8": b'[{"tag_name": "v1.0.0\xff"}]',
    "mixed": json.dumps(MIXED).encode(),
}
SLOW = ["drip", "headdrip", "bomb", "silent"]


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with hostile_server(BODIES) as url:
        yield url


async def _fetch(api: str, case: str, cache: Path | None) -> ReleaseData:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    async with client_for(f"{api}/{case}", offline=False) as client:
        http = HttpCache(cache, client, ttl=timedelta(hours=1), now=now)
        return await GitHubSource(http, api_url=f"{api}/{case}").fetch("o/r")


def _outcome(api: str, case: str, tmp_path: Path) -> tuple[ReleaseData | None, str]:
    with no_hang(120):
        try:
            return asyncio.run(_fetch(api, case, tmp_path / "cache")), ""
        except SourceUnavailable as exc:
            return None, str(exc)


@pytest.mark.parametrize("case", [c for c in BODIES if c != "mixed"])
def test_unusable_page_makes_the_source_unavailable(api: str, case: str, tmp_path: Path, outcomes: Record) -> None:
    data, why = _outcome(api, case, tmp_path)
    ok = data is None or candidates(data) == {}  # a page with a mangled tag gives no usable release
    outcomes(f"github::{case}", 1 if data is None else 0, ok)
    assert ok, data


def test_one_bad_release_is_skipped_with_a_warning(api: str, tmp_path: Path, outcomes: Record) -> None:
    data, why = _outcome(api, "mixed", tmp_path)
    assert data is not None, why
    outcomes("github::mixed field types", 0, True)
    assert [r.tag for r in data.releases] == ["v2.0.0"]
    assert len(data.warnings) == 4 and "and 5 more" in data.warnings[-1], data.warnings


@pytest.mark.parametrize("case", SLOW)
def test_slow_or_bombing_api_is_cut(
    api: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcomes: Record
) -> None:
    monkeypatch.setattr(http_cache, "ANSWER_DEADLINE", 3.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data, why = _outcome(api, case, tmp_path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    outcomes(f"github::{case}", 1 if data is None else 3, data is None)
    assert data is None
    assert ("larger than" in why) if case == "bomb" else ("timed out" in why), why
    assert grown_mib < 128, f"peak memory grew by {grown_mib:.0f} MiB"


@pytest.mark.parametrize("case", ["mixed", "nested", "bomb", "notjson"])
def test_plan_against_a_hostile_api_never_crashes(api: str, case: str, tmp_path: Path, outcomes: Record) -> None:
    """`obsplan plan` online against the hostile API: the release data falls back (snapshot) or the bad
    release is skipped; exit 0, or 1/2 with a one-line reason — never 3."""
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "versions.yaml").write_text("components:\n  node_exporter: {}\n")
    env = {
        "OBSPLAN_CACHE_DIR": str(tmp_path / "cache"),
        "OBSPLAN_NOW": "2026-11-22T12:00:00+00:00",
        "GITHUB_API_URL": f"{api}/{case}",
        "GRAFANA_COM_API_URL": f"{api}/{case}",
        "OSV_API_URL": f"{api}/{case}",
    }
    args = ["plan", "--config-dir", str(tmp_path / "cfg"), "-o", str(tmp_path / "out.lock")]
    with no_hang(300):
        result = CliRunner().invoke(main, args, env=env)
    outcomes("github::plan online", result.exit_code, result.exit_code != 3)
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code:  # e.g. the one sound release of "mixed" has no asset: "no usable release"
        assert result.output.startswith("error: ") and "Traceback" not in result.output, result.output


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
_item = st.fixed_dictionaries(
    {},
    optional={
        k: _json | st.text(max_size=12)
        for k in ("tag_name", "name", "published_at", "prerelease", "draft", "assets", "body")
    },
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(_item, max_size=5), kind=st.sampled_from(["releases", "tags"]))
def test_fuzzed_items_are_kept_or_skipped_never_crash(items: list[dict[str, Any]], kind: str, outcomes: Record) -> None:
    listing = Listing(kind, items, datetime(2026, 1, 1, tzinfo=UTC), None)
    try:
        releases, skipped = listing.releases()
        code = 0
    except Exception:  # noqa: BLE001 - counted as the internal error it would be
        code, releases, skipped = 3, [], []
    outcomes("github::fuzzed release items", code, code == 0)
    assert code == 0
    assert len(releases) + min(len(skipped), 4) >= min(len(items), 4) or len(items) > 4
