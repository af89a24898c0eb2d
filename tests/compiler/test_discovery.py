"""Release discovery against the local GitHub-compatible server: pagination, ETags, fallbacks, token handling."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from obsplan.compiler.sources.github import GitHubSource
from obsplan.compiler.sources.http_cache import HttpCache, RequestKey, entry_path
from obsplan.compiler.sources.releases import SourceUnavailable, candidates

from obsplan.kernel.versions import Version
from tests.compiler.test_scenarios import run
from tests.conftest import write_config
from tests.ghserver import FakeGitHub

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def fetch(
    gh: FakeGitHub,
    repo: str,
    cache: Path | None,
    now: datetime = NOW,
    token: str | None = None,
    offline: bool = False,
    timeout: float = 5.0,
):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(timeout=timeout) as client:
            http = HttpCache(cache, client, ttl=timedelta(minutes=15), now=now, offline=offline)
            src = GitHubSource(http, api_url=gh.api_url, token=token)
            return await src.fetch(repo)

    return asyncio.run(go())


def test_all_pages_and_version_precedence(gh: FakeGitHub) -> None:
    data = fetch(gh, "prometheus/prometheus", None)
    assert gh.count("/repos/prometheus/prometheus/releases") == 4  # 397 releases at 100 per page
    found = candidates(data, ignore_twins=True)
    assert max(v for v in found if not v.is_prerelease) == Version.parse("3.14.0")
    assert Version.parse("0.314.0") not in found


def test_tags_fallback_for_repository_without_releases(gh: FakeGitHub) -> None:
    data = fetch(gh, "hectorjsmith/fail2ban-prometheus-exporter", None)
    assert data.detail == "GitHub tags API" and len(data.releases) == 18
    assert max(candidates(data)) == Version.parse("0.10.1")


def test_ttl_then_conditional_request(gh: FakeGitHub, tmp_path: Path) -> None:
    fetch(gh, "prometheus/node_exporter", tmp_path)
    first = gh.count("/repos/")
    fetch(gh, "prometheus/node_exporter", tmp_path, now=NOW + timedelta(minutes=5))
    assert gh.count("/repos/") == first  # within the TTL: no request at all
    later = NOW + timedelta(minutes=30)
    data = fetch(gh, "prometheus/node_exporter", tmp_path, now=later)
    revalidations = [r for r in gh.requests[first:] if r.path.startswith("/repos/")]
    assert revalidations and all("if-none-match" in r.headers and r.status == 304 for r in revalidations)
    assert data.source == "github" and data.as_of == later.date().isoformat()
    page = RequestKey("GET", f"{gh.api_url}/repos/prometheus/node_exporter/releases?per_page=100")
    cached = json.loads(entry_path(tmp_path, page).read_text())
    assert cached["fetched_at"].startswith(later.date().isoformat())


def test_token_sent_but_never_stored(gh: FakeGitHub, tmp_path: Path) -> None:
    secret = "ghp_secret_token_value"
    fetch(gh, "prometheus/node_exporter", tmp_path, token=secret)
    assert all(r.headers.get("authorization") == f"Bearer {secret}" for r in gh.requests if r.path.startswith("/repos"))
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert secret not in f.read_text()


@pytest.mark.parametrize("fault", ["rate_limit", "rate_limit_429", "server_error", "timeout"])
def test_faults_fall_back_to_stale_cache(gh: FakeGitHub, tmp_path: Path, fault: str) -> None:
    fetch(gh, "prometheus/alertmanager", tmp_path)
    if fault == "rate_limit":
        gh.rate_limit(True)
    elif fault == "rate_limit_429":
        gh.rate_limit(True, status=429)
    elif fault == "server_error":
        gh.fail(r"/repos/", status=502, times=None)
    else:
        gh.delay(1.0)
    data = fetch(gh, "prometheus/alertmanager", tmp_path, now=NOW + timedelta(days=3), timeout=0.3)
    assert data.source == "cache" and data.as_of == NOW.date().isoformat()
    assert "stale cache used" in data.detail
    with pytest.raises(SourceUnavailable):
        fetch(gh, "prometheus/alertmanager", None, timeout=0.3)


def test_offline_never_touches_the_network(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "staging", "--offline")
    assert code == 0, err
    assert gh.requests == []
    lock = json.loads((tmp_path / "plans" / "staging.lock").read_text())
    assert {c["source"]["kind"] for c in lock["components"].values()} == {"snapshot"}
    assert lock["components"]["prometheus"]["artifacts"]["linux-amd64"]["checksum_status"] == "missing"
    code, _, _ = run("plan", "--config-dir", str(cfg), "--env", "production")  # offline_mode: true
    assert code == 0 and gh.requests == []


def test_rate_limited_without_cache_uses_snapshot_and_says_so(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    gh.rate_limit(True)
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "staging")
    assert code == 0, err
    lock = json.loads((tmp_path / "plans" / "staging.lock").read_text())
    prom = lock["components"]["prometheus"]
    assert prom["source"]["kind"] == "snapshot" and prom["source"]["as_of"] == "2026-08-22"
    assert any("rate limit" in w for w in prom["warnings"])
    assert "source=snapshot" in out


def test_no_release_data_falls_back_to_fallback_version_then_module(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(
        "components:\n"
        "  blackbox_exporter:\n    github_repo: prometheus/blackbox_exporter\n"
        "    artifact: 'blackbox_exporter-{version}.{os}-{arch}.tar.gz'\n    checksums: sha256sums.txt\n"
        "    fallback_version: '0.25.0'\n    runtime: {port: 9115}\n"
        "  statsd_exporter:\n    github_repo: prometheus/statsd_exporter\n"
        "    artifact: 'statsd_exporter-{version}.{os}-{arch}.tar.gz'\n    runtime: {port: 9102}\n"
    )
    (cfg / "modules" / "statsd_exporter").mkdir(parents=True)
    (cfg / "modules" / "statsd_exporter" / "module.yaml").write_text('version: "0.26.0"\nport: 9102\n')
    code, _, err = run("plan", "--config-dir", str(cfg))
    assert code == 0, err
    comps = json.loads((tmp_path / "plans" / "default.lock").read_text())["components"]
    assert (comps["blackbox_exporter"]["version"], comps["blackbox_exporter"]["source"]["kind"]) == (
        "0.25.0",
        "fallback_version",
    )
    assert "release data unavailable, using fallback_version 0.25.0" in comps["blackbox_exporter"]["warnings"]
    assert (comps["statsd_exporter"]["version"], comps["statsd_exporter"]["source"]["kind"]) == (
        "0.26.0",
        "module_manifest",
    )


def test_custom_exporter_from_github(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    gh.add_repo(
        "prometheus/blackbox_exporter",
        tags=[
            ("v0.24.0", "2023-05-16T00:00:00Z"),
            ("v0.25.0", "2024-03-14T00:00:00Z"),
            ("v0.26.0-rc.0", "2025-02-01T00:00:00Z"),
        ],
        assets_template=["blackbox_exporter-{version}.{os}-{arch}.tar.gz", "sha256sums.txt"],
    )
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(
        "components:\n  blackbox_exporter:\n    github_repo: prometheus/blackbox_exporter\n"
        "    artifact: 'blackbox_exporter-{version}.{os}-{arch}.tar.gz'\n    checksums: sha256sums.txt\n"
        "    runtime: {port: 9115}\n"
    )
    code, _, err = run("plan", "--config-dir", str(cfg))
    assert code == 0, err
    comp = json.loads((tmp_path / "plans" / "default.lock").read_text())["components"]["blackbox_exporter"]
    assert comp["version"] == "0.25.0"
    art = comp["artifacts"]["linux-amd64"]
    assert art["filename"] == "blackbox_exporter-0.25.0.linux-amd64.tar.gz" and art["sha256"]
    assert comp["runtime"]["port"] == 9115


def test_promtail_never_picked_beyond_its_last_artifacts(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(
        "components:\n  promtail:\n    strategy: range\n    version_range: '>=3.6.0 <3.7.0'\n"
    )
    code, _, err = run("plan", "--config-dir", str(cfg))
    assert code == 0, err
    comp = json.loads((tmp_path / "plans" / "default.lock").read_text())["components"]["promtail"]
    assert comp["version"] == "3.6.11"  # 3.6.12-3.6.15 exist but ship no promtail artifacts


def test_changelogs_fetched_online_and_cached(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    fetched = [r.path for r in gh.requests if "/contents/" in r.path]
    assert "/repos/prometheus/prometheus/contents/CHANGELOG.md?ref=release-3.5" in fetched
    assert "/repos/grafana/loki/contents/CHANGELOG.md" in fetched
    lock = json.loads((tmp_path / "plans" / "staging.lock").read_text())
    step = next(s for s in lock["plan"]["steps"] if s["id"] == "prometheus@3.14.0")
    texts = [b["text"] for b in step["breaking_changes"] if b["version"] == "3.0.0"]
    assert any("v1 api" in t for t in texts) and len(texts) > 10
    assert all(
        b["source"].startswith("prometheus/prometheus CHANGELOG") or b["marker"] == "curated"
        for b in step["breaking_changes"]
    )
    before = gh.count("/repos/prometheus/prometheus/contents")
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    assert gh.count("/repos/prometheus/prometheus/contents") == before  # fresh cache: no request
