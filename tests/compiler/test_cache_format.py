"""Every fetcher writes the one cache format: after an online plan against the local servers (GitHub releases,
tags and CHANGELOGs, grafana.com, checksum files, the OSV query API), every file under the cache directory is a
`CacheEntry` at the path its own request key names; a warm re-plan then asks none of the servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from obsplan.compiler.sources.http_cache import CacheEntry, RequestKey, entry_path

from tests.compiler.test_scenarios import run
from tests.conftest import write_config
from tests.ghserver import FakeGitHub
from tests.http_origin import Origin, Route, serve_origin

KINDS = {
    "GitHub releases": lambda e: "/releases?per_page=" in e.url,
    "GitHub tags": lambda e: "/tags?per_page=" in e.url,
    "CHANGELOG": lambda e: "/contents/" in e.url and e.status == 200,
    "missing CHANGELOG (404)": lambda e: "/contents/" in e.url and e.status == 404,
    "grafana.com versions": lambda e: e.url.endswith("/api/downloads/grafana/versions"),
    "grafana.com package": lambda e: "/packages/" in e.url and e.immutable,
    "checksum file": lambda e: e.url.endswith(("sha256sums.txt", "SHA256SUMS", "_checksums.txt")) and e.immutable,
    "checksum side-car": lambda e: e.url.endswith(".sha256") and e.immutable,
    "OSV query": lambda e: e.method == "POST" and e.url.endswith("/v1/query") and e.request_sha256 is not None,
}


def plan(cfg: Path, out: Path) -> None:
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "staging", "-o", str(out))
    assert code == 0, err


@pytest.fixture
def osv(monkeypatch: pytest.MonkeyPatch) -> Iterator[Origin]:
    with serve_origin() as origin:
        origin.routes["/v1/query"] = Route(body='{"vulns": []}', etag=None)
        monkeypatch.setenv("OSV_API_URL", origin.url)
        yield origin


def test_every_fetcher_writes_the_one_entry_format(
    gh: FakeGitHub, obsplan_env: Path, osv: Origin, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    (cfg / "upgrade-policy.yaml").write_text("osv_api: {enabled: true}\n")
    gh.fail(r"/repos/grafana/loki/contents/", status=404, times=None)
    plan(cfg, tmp_path / "a.lock")
    # every file but the report's compiled template (`templates/`, jinja2's bytecode cache: not an upstream answer)
    files = sorted(
        p for p in obsplan_env.rglob("*") if not p.is_dir() and p.relative_to(obsplan_env).parts[0] != "templates"
    )
    entries = []
    for path in files:
        assert path.relative_to(obsplan_env).parts[0] == "http" and path.suffix == ".json", path
        entry = CacheEntry.model_validate_json(path.read_bytes())
        assert entry_path(obsplan_env, RequestKey(entry.method, entry.url, entry.request_sha256)) == path
        entries.append(entry)
    found = {kind for kind, test in KINDS.items() if any(test(e) for e in entries)}
    assert found == set(KINDS), set(KINDS) - found
    assert {gh.url + r.path for r in gh.requests} <= {e.url for e in entries}  # every answer was cached
    gh.clear_requests()
    queries = osv.count()
    plan(cfg, tmp_path / "b.lock")  # not a re-plan from a.lock: the same versions are asked about
    assert gh.requests == [] and osv.count() == queries  # warm re-plan inside the TTL: nothing asked
