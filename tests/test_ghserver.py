"""Tests for tests/ghserver.py: real HTTP (httpx) against a running FakeGitHub."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.ghserver import FakeGitHub

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "upstream"
LINK_RE = re.compile(r'<([^>]+)>; rel="(\w+)"')


@pytest.fixture(scope="module")
def gh():
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def client(gh):
    gh.reset_faults()
    with httpx.Client(base_url=gh.url, timeout=5) as c:
        yield c
    gh.reset_faults()


def links(resp: httpx.Response) -> dict[str, str]:
    return {rel: url for url, rel in LINK_RE.findall(resp.headers.get("link", ""))}


def traverse(client: httpx.Client, path: str, per_page: int = 100) -> list[dict]:
    items, url, pages = [], f"{path}?per_page={per_page}", 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        items += r.json()
        url = links(r).get("next")
        pages += 1
        assert pages < 50
    return items


def tsv_tags(repo_dir: str) -> list[str]:
    text = (FIXTURES / repo_dir / "tags.tsv").read_text()
    return [line.split("\t")[0] for line in text.splitlines() if line.strip()]


def expected_prometheus_releases() -> list[str]:
    """Independent re-statement of the release rule for prometheus/prometheus."""
    out = []
    for t in tsv_tags("prometheus__prometheus"):
        if not re.match(r"^v?\d+\.\d+\.\d+", t) or t.endswith("-retract"):
            continue
        m = re.match(r"^v0\.(\d+)\.", t)
        if m and int(m[1]) >= 35:
            continue
        out.append(t)
    return out


# --------------------------------------------------------------------------------------------------------------------
# releases / tags


def test_pagination_link_header_and_full_traversal(gh, client):
    r = client.get("/repos/prometheus/prometheus/releases", params={"per_page": 100})
    assert r.status_code == 200
    base = f"{gh.url}/repos/prometheus/prometheus/releases"
    expected = expected_prometheus_releases()
    last = -(-len(expected) // 100)
    assert r.headers["link"] == (
        f'<{base}?per_page=100&page=2>; rel="next", <{base}?per_page=100&page={last}>; rel="last"'
    )
    r2 = client.get(links(r)["next"])
    assert set(links(r2)) == {"prev", "next", "last", "first"}
    r_last = client.get(links(r)["last"])
    assert set(links(r_last)) == {"prev", "first"}

    releases = traverse(client, "/repos/prometheus/prometheus/releases")
    tags = [x["tag_name"] for x in releases]
    assert len(tags) == len(set(tags)) == len(expected) == 397
    assert sorted(tags) == sorted(expected)
    created = [x["created_at"] for x in releases]
    assert created == sorted(created, reverse=True)  # newest first, like GitHub
    assert tags[0] == "v3.14.0"

    # default per_page is 30; max is 100
    assert len(client.get("/repos/prometheus/prometheus/releases").json()) == 30
    assert len(client.get("/repos/prometheus/prometheus/releases?per_page=500").json()) == 100


def test_prometheus_twins_are_tags_not_releases(client):
    releases = {x["tag_name"]: x for x in traverse(client, "/repos/prometheus/prometheus/releases")}
    tags = [t["name"] for t in traverse(client, "/repos/prometheus/prometheus/tags")]
    assert len(tags) == len(tsv_tags("prometheus__prometheus")) == 550
    assert "v0.314.0" in tags and "v0.314.0" not in releases
    assert "v0.35.0-rc1" in tags and "v0.35.0-rc1" not in releases
    for junk in ("dev", "checkout", "all-tests-pass", "v2.35.0-retract", "v1.99.0-retract"):
        assert junk in tags and junk not in releases
    # build variants are real releases (the resolver must ignore them); old unprefixed tags are kept
    assert releases["v2.43.0+stringlabels"]["prerelease"] is False
    assert releases["v2.43.0-rc.1+stringlabels"]["prerelease"] is True
    assert releases["0.20.0"]["prerelease"] is False
    for pre in ("v3.14.0-rc.0", "v2.35.0-rc0", "0.9.0rc1", "v2.0.0-beta.5", "v3.0.0-beta.1"):
        assert releases[pre]["prerelease"] is True, pre
    rel = releases["v3.14.0"]
    assert rel["draft"] is False
    assert rel["published_at"] == rel["created_at"] and rel["created_at"].endswith("Z")
    assert {a["name"] for a in rel["assets"]} == {
        "prometheus-3.14.0.linux-amd64.tar.gz",
        "prometheus-3.14.0.linux-arm64.tar.gz",
        "prometheus-3.14.0.linux-armv7.tar.gz",
        "sha256sums.txt",
    }
    tag = client.get("/repos/prometheus/prometheus/tags?per_page=1").json()[0]
    assert set(tag) >= {"name", "commit", "zipball_url", "tarball_url"} and len(tag["commit"]["sha"]) == 40


def test_fail2ban_mirror_has_tags_but_no_releases(client):
    r = client.get("/repos/hectorjsmith/fail2ban-prometheus-exporter/releases")
    assert r.status_code == 200 and r.json() == [] and "link" not in r.headers
    tags = client.get("/repos/hectorjsmith/fail2ban-prometheus-exporter/tags?per_page=100").json()
    assert len(tags) == 18 and tags[0]["name"] == "v0.10.1" and "0.0.0" in {t["name"] for t in tags}
    assert client.get("/repos/hectorjsmith/fail2ban-prometheus-exporter/releases/latest").status_code == 404


def test_loki_releases_skip_other_products(client):
    releases = [x["tag_name"] for x in traverse(client, "/repos/grafana/loki/releases")]
    tags = [t["name"] for t in traverse(client, "/repos/grafana/loki/tags")]
    assert len(tags) == 392
    assert len(releases) == 121 and all(re.fullmatch(r"v\d+\.\d+\.\d+", t) for t in releases)
    assert "2.8.3" in tags and "2.8.3" not in releases and "v2.8.3" in releases
    assert any(t.startswith("helm-loki-") for t in tags) and "operator/v0.11.0" in tags


def test_grafana_releases_use_v_tags_and_have_no_assets(client):
    releases = {x["tag_name"]: x for x in traverse(client, "/repos/grafana/grafana/releases")}
    assert len(releases) == 361
    assert releases["v12.0.0+security-01"]["prerelease"] is False
    assert releases["v11.0.0-preview"]["prerelease"] is True
    assert releases["v9.0.0-beta1"]["created_at"] == "2022-05-24T00:00:00Z"
    assert all(r["assets"] == [] for r in releases.values())
    tags = client.get("/repos/grafana/grafana/tags?per_page=5").json()
    assert tags[0]["commit"]["sha"] == hashlib.sha1(tags[0]["name"].encode()).hexdigest()


def test_unknown_repo_is_404(client):
    r = client.get("/repos/prometheus/nope/releases")
    assert r.status_code == 404 and r.json()["message"] == "Not Found"


# --------------------------------------------------------------------------------------------------------------------
# HTTP behaviour


def test_etag_conditional_request_gets_304(client):
    path = "/repos/nginx/nginx-prometheus-exporter/releases"
    r1 = client.get(path)
    etag = r1.headers["etag"]
    assert etag == f'"{hashlib.sha256(r1.content).hexdigest()}"'
    remaining = int(r1.headers["x-ratelimit-remaining"])
    assert int(r1.headers["x-ratelimit-limit"]) == 5000 and remaining < 5000
    r2 = client.get(path, headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag
    assert int(r2.headers["x-ratelimit-remaining"]) == remaining  # conditional hits are free
    r3 = client.get(path, headers={"If-None-Match": '"stale"'})
    assert r3.status_code == 200 and int(r3.headers["x-ratelimit-remaining"]) == remaining - 1


def test_rate_limit_injection(gh, client):
    gh.rate_limit(True)
    r = client.get("/repos/prometheus/alertmanager/releases")
    assert r.status_code == 403
    assert r.headers["x-ratelimit-remaining"] == "0" and int(r.headers["x-ratelimit-reset"]) > time.time()
    assert r.json()["message"].startswith("API rate limit exceeded")
    gh.rate_limit(True, status=429)
    assert client.get("/repos/prometheus/alertmanager/releases").status_code == 429
    gh.rate_limit(False)
    assert client.get("/repos/prometheus/alertmanager/releases").status_code == 200


def test_fail_times_then_recover(gh, client):
    gh.fail(r"^/repos/prometheus/node_exporter/releases", status=502, times=2)
    before = gh.count("/repos/prometheus/node_exporter/releases")
    codes = [client.get("/repos/prometheus/node_exporter/releases").status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    assert gh.count("/repos/prometheus/node_exporter/releases") == before + 3
    assert [r.status for r in gh.requests if r.path.startswith("/repos/prometheus/node_exporter/")][-3:] == codes


def test_delay_makes_client_time_out(gh, client):
    gh.delay(0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/repos/prometheus/mysqld_exporter/releases", timeout=0.1)
    gh.delay(0)
    assert client.get("/repos/prometheus/mysqld_exporter/releases").status_code == 200


def test_require_token():
    with FakeGitHub(require_token="abc") as gh:
        url = f"{gh.url}/repos/prometheus/mysqld_exporter/releases"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = httpx.get(url, headers={"Authorization": "Bearer abc"})
        assert r.status_code == 200 and gh.requests[-1].headers["authorization"] == "Bearer abc"


# --------------------------------------------------------------------------------------------------------------------
# downloads and checksums


def _check_sums(client: httpx.Client, release: dict, sums_name: str) -> None:
    assets = {a["name"]: a for a in release["assets"]}
    sums = client.get(assets[sums_name]["browser_download_url"])
    assert sums.status_code == 200 and len(sums.content) == assets[sums_name]["size"]
    lines = sums.text.splitlines()
    assert [line.split("  ")[1] for line in lines] == sorted(n for n in assets if n != sums_name)
    for line in lines:
        digest, name = line.split("  ")
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        data = client.get(assets[name]["browser_download_url"]).content
        assert len(data) == assets[name]["size"]
        assert hashlib.sha256(data).hexdigest() == digest


def test_checksum_files_match_downloaded_assets(client):
    for repo, tag, sums in [
        ("prometheus/prometheus", "v3.14.0", "sha256sums.txt"),
        ("prometheus/prometheus", "v2.43.0+stringlabels", "sha256sums.txt"),
        ("nginx/nginx-prometheus-exporter", "v1.5.3", "nginx-prometheus-exporter_1.5.3_checksums.txt"),
        ("hipages/php-fpm_exporter", "v2.2.0", "php-fpm_exporter_2.2.0_checksums.txt"),
        ("grafana/loki", "v3.6.11", "SHA256SUMS"),
    ]:
        rel = client.get(f"/repos/{repo}/releases/tags/{tag}").json()
        _check_sums(client, rel, sums)
    php = client.get("/repos/hipages/php-fpm_exporter/releases/tags/v2.2.0").json()
    assert not any("armv7" in a["name"] for a in php["assets"])  # platforms_supported: amd64, arm64


def test_add_asset_real_bytes_flow_into_checksums(gh, client):
    data = b"\x1f\x8b real tarball bytes"
    gh.add_asset("prometheus/node_exporter", "v1.12.1", "node_exporter-1.12.1.linux-amd64.tar.gz", data)
    gh.add_asset("prometheus/node_exporter", "v1.12.1", "node_exporter-1.12.1.darwin-arm64.tar.gz", b"mac")
    rel = client.get("/repos/prometheus/node_exporter/releases/tags/v1.12.1").json()
    assets = {a["name"]: a for a in rel["assets"]}
    assert assets["node_exporter-1.12.1.linux-amd64.tar.gz"]["size"] == len(data)
    assert "node_exporter-1.12.1.darwin-arm64.tar.gz" in assets
    assert client.get(assets["node_exporter-1.12.1.linux-amd64.tar.gz"]["browser_download_url"]).content == data
    _check_sums(client, rel, "sha256sums.txt")
    assert client.get(f"{gh.url}/download/prometheus/node_exporter/v1.12.1/missing.tar.gz").status_code == 404


def test_promtail_assets_stop_after_3_6_11(client):
    def names(tag: str) -> set[str]:
        return {a["name"] for a in client.get(f"/repos/grafana/loki/releases/tags/{tag}").json()["assets"]}

    assert {"promtail-linux-amd64.zip", "promtail-linux-arm.zip", "loki-linux-arm.zip"} <= names("v3.6.11")
    assert "promtail-linux-amd64.zip" in names("v2.9.17")
    for tag in ("v3.7.0", "v3.6.15"):
        assert not any(n.startswith("promtail-") for n in names(tag)) and "loki-linux-amd64.zip" in names(tag)


def test_grafana_sidecar_matches_tarball(gh, client):
    base = f"{gh.grafana_dl_url}/oss/release/grafana-12.2.0.linux-amd64.tar.gz"
    tarball = client.get(base)
    assert tarball.status_code == 200 and tarball.content
    sidecar = client.get(base + ".sha256")
    assert sidecar.text == hashlib.sha256(tarball.content).hexdigest() + "\n"
    build = f"{gh.grafana_dl_url}/grafana/release/13.2.2/grafana_13.2.2_34846740809_linux_amd64.tar.gz"
    assert client.get(build + ".sha256").text.strip() == hashlib.sha256(client.get(build).content).hexdigest()
    assert client.get(f"{gh.grafana_dl_url}/oss/release/grafana-99.0.0.linux-amd64.tar.gz").status_code == 404
    gh.add_asset("grafana/grafana", "v12.2.0", "grafana-12.2.0.linux-arm64.tar.gz", b"real")
    arm = client.get(f"{gh.grafana_dl_url}/oss/release/grafana-12.2.0.linux-arm64.tar.gz")
    assert arm.content == b"real"
    assert client.get("/repos/grafana/grafana/releases/tags/v12.2.0").json()["assets"] == []


def test_gitlab_downloads_for_fail2ban(gh, client):
    base = f"{gh.gitlab_url}/hectorjsmith/fail2ban-prometheus-exporter/-/releases"
    sums = client.get(f"{base}/v0.10.1/downloads/fail2ban_exporter_0.10.1_checksums.txt")
    assert sums.status_code == 200
    for line in sums.text.splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256(client.get(f"{base}/v0.10.1/downloads/{name}").content).hexdigest() == digest
    assert client.get(f"{base}/0.6.0/downloads/fail2ban_exporter_0.6.0_linux_arm64.tar.gz").status_code == 200
    assert client.get(f"{base}/0.5.0/downloads/fail2ban_exporter_0.5.0_linux_amd64.tar.gz").status_code == 404


# --------------------------------------------------------------------------------------------------------------------
# custom repositories


def test_add_repo_and_set_releases(gh, client):
    gh.add_repo(
        "prometheus/blackbox_exporter",
        tags=[("v0.27.0", "2025-06-30"), ("v0.28.0-rc.0", "2025-10-01T10:00:00Z"), ("v0.28.0", "2025-10-20")],
        assets_template=["blackbox_exporter-{version}.{os}-{arch}.tar.gz", "sha256sums.txt"],
    )
    rels = client.get("/repos/prometheus/blackbox_exporter/releases").json()
    assert [r["tag_name"] for r in rels] == ["v0.28.0", "v0.28.0-rc.0", "v0.27.0"]
    assert "blackbox_exporter-0.28.0.linux-amd64.tar.gz" in {a["name"] for a in rels[0]["assets"]}
    _check_sums(client, rels[0], "sha256sums.txt")

    gh.set_releases(
        "prometheus/blackbox_exporter",
        [
            {"tag_name": "v0.29.0", "draft": True, "created_at": "2026-01-02T00:00:00Z"},
            {"tag_name": "v0.28.0", "assets": []},
        ],
    )
    rels = client.get("/repos/prometheus/blackbox_exporter/releases").json()
    assert [(r["tag_name"], r["draft"], r["published_at"]) for r in rels] == [
        ("v0.29.0", True, None),
        ("v0.28.0", False, "2025-10-20T00:00:00Z"),
    ]
    assert rels[1]["assets"] == []
    assert client.get("/repos/prometheus/blackbox_exporter/releases/latest").json()["tag_name"] == "v0.28.0"


def test_stop_is_quick_even_with_pending_delay():
    gh = FakeGitHub().start()
    gh.delay(30)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{gh.url}/repos/prometheus/prometheus/releases", timeout=0.2)
    t0 = time.monotonic()
    gh.stop()
    assert time.monotonic() - t0 < 2
