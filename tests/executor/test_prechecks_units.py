"""The pieces behind a 2 → 3 upgrade proven before its switch: the retention flag per version, the target's own
checker (real promtool/amtool of Debian's builds), the rehearsal's disposable data copy and stripped config,
the post-step PromQL against a local HTTP server, and lock bytes unchanged for definitions without them."""

from __future__ import annotations

import http.server
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import obsplan.executor.checks.postverify as postverify
import pytest
import yaml
from obsplan.compiler.config.policy import PolicyFile
from obsplan.compiler.plan.lock_stage import host_policy
from obsplan.executor.checks.config_verdict import check_release
from obsplan.executor.checks.rehearsal import copy_data, stripped_config
from obsplan.executor.host.layout import Layout
from obsplan.executor.services.service_render import render_service

from obsplan.lock.lockfile import HostPolicy
from obsplan.lock.service_def import Rehearsal, ServiceDef

from .conftest import catalog_runtime

V1 = "alerting:\n  alertmanagers:\n    - api_version: v1\n      static_configs: [{targets: ['127.0.0.1:9093']}]\n"
V3_ONLY = "scrape_configs:\n  - job_name: x\n    fallback_scrape_protocol: PrometheusText0.0.4\n"


def test_retention_renders_the_time_form_wherever_it_exists(tmp_path: Path) -> None:
    rt = catalog_runtime("prometheus", 9090, storage={"retention": "30d"})
    argv = {v: render_service("prometheus", rt, v, Layout(tmp_path)).argv for v in ("2.6.0", "2.42.0", "3.5.3")}
    assert "--storage.tsdb.retention=30d" in argv["2.6.0"]
    assert (
        "--storage.tsdb.retention.time=30d" in argv["2.42.0"] and "--storage.tsdb.retention.time=30d" in argv["3.5.3"]
    )
    assert not any(a.startswith("--storage.tsdb.retention=") for a in argv["3.5.3"])  # 3.0 removed it
    plain = render_service("prometheus", catalog_runtime("prometheus", 9090), "3.5.3", Layout(tmp_path)).argv
    assert not any(a.startswith("--storage.tsdb.retention") for a in plain)


def test_definitions_without_checker_or_rehearsal_and_policy_without_verify_keep_lock_bytes() -> None:
    assert "check" not in ServiceDef.generic().model_dump() and "rehearsal" not in ServiceDef.generic().model_dump()
    assert "verify" not in HostPolicy().model_dump()
    assert "check" in catalog_runtime("prometheus", 9090).service.model_dump()


def test_policy_verify_is_carried_into_the_lock() -> None:
    policy = PolicyFile.model_validate({"verify": {"within_seconds": 30, "expressions": {"prometheus": ["up == 1"]}}})
    hp = host_policy(policy)
    assert hp.verify is not None and hp.verify.expressions == {"prometheus": ["up == 1"]}
    assert hp.verify.within_seconds == 30 and hp.verify.prometheus_url is None
    assert host_policy(PolicyFile()).verify is None  # none by default


def _release(releases: dict, tmp_path: Path, name: str, version: str) -> Path:
    dest = tmp_path / "opt" / name / version
    with tarfile.open(releases[(name, version)]) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.mark.e2e
def test_the_target_release_judges_the_configuration(releases: dict, tmp_path: Path) -> None:
    layout, rt = Layout(tmp_path), catalog_runtime("prometheus", 9090)
    config = tmp_path / "etc/prometheus/prometheus.yml"
    assert check_release("prometheus", rt, "3.5.3", tmp_path, layout) is None  # no configuration: nothing to check
    config.parent.mkdir(parents=True)
    r2, r3 = (_release(releases, tmp_path, "prometheus", v) for v in ("2.53.3", "3.5.3"))
    for text, accepted_by, refused_by, words in ((V1, r2, r3, "got v1"), (V3_ONLY, r3, r2, "fallback_scrape_protocol")):
        config.write_text(text)
        ok = check_release("prometheus", rt, accepted_by.name, accepted_by, layout)
        no = check_release("prometheus", rt, refused_by.name, refused_by, layout)
        assert ok is not None and ok.outcome == "accepted" and ok.tool == "promtool", ok
        assert no is not None and no.refused and words in no.complaint() and str(config) in no.complaint(), no
    am_rt = catalog_runtime("alertmanager", 9093)
    am_config = tmp_path / "etc/alertmanager/alertmanager.yml"
    am_config.parent.mkdir(parents=True)
    am_config.write_text("route: {receiver: nowhere}\nreceivers: [{name: blackhole}]\n")
    am = _release(releases, tmp_path, "alertmanager", "0.33.1")
    verdict = check_release("alertmanager", am_rt, "0.33.1", am, layout)
    assert verdict is not None and verdict.refused and verdict.tool == "amtool" and "nowhere" in verdict.output
    bare = tmp_path / "bare"
    (bare / "x").mkdir(parents=True)
    missing = check_release("alertmanager", am_rt, "0.33.1", bare, layout)
    assert missing is not None and missing.outcome == "unavailable"


def test_rehearsal_copy_links_blocks_copies_the_rest_and_strips_the_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    block = data / "01HBLOCK"
    (block / "chunks").mkdir(parents=True)
    (block / "meta.json").write_text("{}")
    (block / "chunks/000001").write_bytes(b"c" * 10)
    (data / "wal").mkdir()
    (data / "wal/00000000").write_bytes(b"w")
    (data / "lock").write_text("")
    secret = tmp_path / "secret"  # a link the service's user left in a block: never linked or copied as root
    secret.write_text("root only")
    (block / "chunks/000002").symlink_to(secret)
    spec = Rehearsal(strip=["scrape_configs", "alerting"], skip=["lock"])
    copied = copy_data(data, tmp_path / "copy", spec)
    assert (copied.linked, copied.copied) == (2, 1)
    assert not (tmp_path / "copy/01HBLOCK/chunks/000002").exists()
    assert (tmp_path / "copy/01HBLOCK/chunks/000001").stat().st_ino == (block / "chunks/000001").stat().st_ino
    assert (tmp_path / "copy/wal/00000000").stat().st_ino != (data / "wal/00000000").stat().st_ino
    assert not (tmp_path / "copy/lock").exists()
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 5s}\nscrape_configs: [{job_name: x}]\n" + V1)
    out = stripped_config(config, tmp_path / "rehearsal.yml", spec)
    assert out is not None and yaml.safe_load(out.read_text()) == {"global": {"scrape_interval": "5s"}}


class _Api(http.server.BaseHTTPRequestHandler):
    answers: dict[str, object] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        query = httpx.URL(self.path).params.get("query", "")
        body = json.dumps(
            self.answers.get(query, {"status": "success", "data": {"resultType": "vector", "result": []}})
        )
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_post_verify_holds_on_a_non_empty_answer(api: str) -> None:
    vec = {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}]}
    _Api.answers = {
        "up == 1": {"status": "success", "data": vec},
        "scalar(0)": {"status": "success", "data": {"resultType": "scalar", "result": [1, "0"]}},
    }
    with httpx.Client(trust_env=False) as client:
        assert postverify.check(client, api, "prometheus", ["up == 1"], 1) == []
        failing = postverify.check(client, api, "prometheus", ["up == 1", "absent_thing", "scalar(0)"], 1)
    assert failing == ["absent_thing (empty result)", "scalar(0) (scalar 0)"]
