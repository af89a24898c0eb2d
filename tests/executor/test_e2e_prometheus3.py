"""End-to-end on Debian's real builds, nothing hand-built: `obsplan plan` (against the local GitHub-compatible
server) → `obsplan apply` of the whole stack, then the headline ladder in one apply:

    prometheus 2.42.0 (bookworm) → 2.53.3 (trixie) → 3.5.3 (sid), alertmanager 0.25.0 → 0.28.1 → 0.33.1,
    node_exporter 1.9.0 → 1.11.1, mysqld_exporter 0.17.2 → 0.19.0, nginx exporter 1.4.1 → 1.5.1

with a prometheus.yml that 3.x refuses (`api_version: v1`): refused by 3.5.3's own promtool before the
switch (2.53.3 keeps running, the same process, also on a second apply), then fixed (3.5.3 serves every
sample scraped under 2.42.0), rollback below the floor refused, a rollback to a version whose promtool
refuses a 3.x-only field refused, rollback to the floor serving the data.

Debian has no 2.55.x: the test's own matrix.yaml restates the two shipped Prometheus rules (same ids) with
the hop at 2.53 and the floor at 2.53.0; the shipped matrix is unchanged.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.services.supervisord import SupervisordManager

from tests.bundle.conftest import cli
from tests.ghserver import FakeGitHub

from . import fetch_debs
from .conftest import PLATFORM, free_port, shutdown_supervisord
from .test_e2e_stack import _StubStatus, alertmanager_template  # noqa: F401 - fixture reused

pytestmark = pytest.mark.e2e

REPOS = {
    "prometheus": "prometheus/prometheus",
    "alertmanager": "prometheus/alertmanager",
    "node_exporter": "prometheus/node_exporter",
    "mysqld_exporter": "prometheus/mysqld_exporter",
    "nginx_exporter": "nginx/nginx-prometheus-exporter",
}
LADDER = {
    "prometheus": ["2.42.0", "2.53.3", "3.5.3"],
    "alertmanager": ["0.25.0", "0.28.1", "0.33.1"],
    "node_exporter": ["1.9.0", "1.11.1"],
    "mysqld_exporter": ["0.17.2", "0.19.0"],
    "nginx_exporter": ["1.4.1", "1.5.1"],
}
MATRIX = """\
# Debian ships no 2.55.x: the shipped rules restated (same ids) with the hop at 2.53 and the floor at 2.53.0
rules:
  - id: prometheus-3-via-2.55
    kind: required_hop
    component: prometheus
    from: "<2.53.0"
    to: ">=3.0.0"
    via_line: "2.53"
    severity: mandatory
    reason: "test restatement: stage through 2.53.x (Debian's newest 2.x) before v3"
    source: "tests/executor/test_e2e_prometheus3.py"
  - id: prometheus-3-rollback-floor
    kind: rollback_floor
    component: prometheus
    to: ">=3.0.0"
    floor: "2.53.0"
    severity: mandatory
    reason: "test restatement: after v3, never below 2.53.0"
    source: "tests/executor/test_e2e_prometheus3.py"
"""
PROMETHEUS_YML = """\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - api_version: {api}
      static_configs: [{{targets: ["127.0.0.1:{am}"]}}]
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom}"]}}]
  - job_name: node
    static_configs: [{{targets: ["127.0.0.1:{node}"]}}]
{extra}"""
RULES_YML = """\
groups:
  - name: obsplan-test
    rules:
      - alert: ObsplanAlwaysFiring
        expr: vector(1)
        labels: {severity: none}
"""
ALERTMANAGER_YML = """\
route: {receiver: blackhole, group_wait: 1s, group_interval: 1s}
receivers:
  - name: blackhole
"""


@dataclass
class Stack:
    cfg: Path
    root: Path
    lock: Path
    ports: dict[str, int]
    env: dict[str, str]
    gh: FakeGitHub

    def write_prometheus_yml(self, api: str, extra: str = "") -> None:
        p = self.ports
        text = PROMETHEUS_YML.format(
            api=api, am=p["alertmanager"], prom=p["prometheus"], node=p["node_exporter"], extra=extra
        )
        (self.root / "etc/prometheus/prometheus.yml").write_text(text)

    def pin(self, versions: dict[str, str], policy: str = "") -> None:
        p, mysql_pw = self.ports, "/etc/obsplan/mysql.pw"
        runtime = {
            "prometheus": f"{{port: {p['prometheus']}, storage: {{retention: 30d}}}}",
            "alertmanager": f"{{port: {p['alertmanager']}}}",
            "node_exporter": f"{{port: {p['node_exporter']}}}",
            "mysqld_exporter": f"{{port: {p['mysqld_exporter']}, mysql: {{user: exporter, password_file: {mysql_pw}}}}}",
            "nginx_exporter": f"{{port: {p['nginx_exporter']}, scrape_uri: '{p['stub']}'}}",
        }
        comps = "".join(
            f"  {c}:\n    strategy: pinned\n    version: '{v}'\n    runtime: {runtime[c]}\n"
            for c, v in versions.items()
        )
        (self.cfg / "versions.yaml").write_text(
            f"global:\n  platforms: [{PLATFORM}]\ncomponents:\n{comps}environments:\n  lab: {{}}\n"
        )
        if policy:
            (self.cfg / "upgrade-policy.yaml").write_text(policy)
        done = cli("plan", "--config-dir", str(self.cfg), "--env", "lab", "-o", str(self.lock), env=self.env)
        assert done.returncode == 0, done.stdout + done.stderr

    def apply(self, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
        args = ("apply", str(self.lock), "--root", str(self.root), "--service-manager", "supervisord", "--json")
        done = cli(*args, "--mode", "fast", "--health-timeout", "60", *extra, env=self.env, timeout=600)
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return done.returncode, events, done.stdout + done.stderr

    def rollback(self, *args: str) -> Any:
        host = ("--root", str(self.root), "--service-manager", "supervisord", "--mode", "fast")
        return cli("rollback", "prometheus", *host, "--health-timeout", "60", *args, env=self.env)

    def pid(self, name: str) -> int | None:
        return SupervisordManager(Layout(self.root)).status(name).pid


def _publish(gh: FakeGitHub, releases: dict[tuple[str, str], Path]) -> None:
    for comp, versions in LADDER.items():
        repo, releases_json = REPOS[comp], []
        for i, v in enumerate(versions):
            asset = fetch_debs.tarball_name(comp, v)
            sums = "sha256sums.txt" if comp != "nginx_exporter" else f"nginx-prometheus-exporter_{v}_checksums.txt"
            releases_json.append(
                {"tag_name": f"v{v}", "created_at": f"202{i}-01-01T00:00:00Z", "assets": [asset, sums]}
            )
        gh.set_releases(repo, releases_json)
        for v in versions:
            gh.add_asset(repo, f"v{v}", fetch_debs.tarball_name(comp, v), releases[(comp, v)].read_bytes())


@pytest.fixture(scope="module")
def stack(
    releases: dict[tuple[str, str], Path],
    tmp_path_factory: pytest.TempPathFactory,
    alertmanager_template: Path,  # noqa: F811
) -> Iterator[Stack]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubStatus)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield from _stack(releases, tmp_path_factory, f"http://127.0.0.1:{httpd.server_address[1]}/stub_status")
    finally:
        httpd.shutdown()
        httpd.server_close()


def _stack(releases: dict[tuple[str, str], Path], factory: pytest.TempPathFactory, stub_status: str) -> Iterator[Stack]:

    base = factory.mktemp("prom3")
    root = Path(tempfile.mkdtemp(prefix="ob", dir="/tmp"))
    ports = {c: free_port() for c in LADDER}
    ports["stub"] = stub_status  # type: ignore[assignment]
    gh = FakeGitHub().start()
    cfg = base / "cfg"
    cfg.mkdir()
    (cfg / "matrix.yaml").write_text(MATRIX)
    s = Stack(cfg, root, base / "lab.lock", ports, gh.plan_env(base / "cache"), gh)
    for rel, text in (("etc/alertmanager/alertmanager.yml", ALERTMANAGER_YML), ("etc/prometheus/rules.yml", RULES_YML)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    _backfill(root / "var/lib/prometheus", base / "backfill.om")
    pw = root / "etc/obsplan/mysql.pw"
    pw.parent.mkdir(parents=True)
    pw.write_text("not-a-real-password\n")
    pw.chmod(0o600)
    try:
        _publish(gh, releases)
        yield s
    finally:
        gh.stop()
        shutdown_supervisord(root)
        shutil.rmtree(root, ignore_errors=True)


BACKFILL_START = int(time.time()) // 3600 * 3600 - 4 * 3600  # an immutable block, well before the head


def _backfill(data: Path, source: Path) -> None:
    """A real TSDB block (immutable, `meta.json`) written by 2.42.0's own promtool before the first start."""
    lines = ["# HELP obsplan_backfilled Written before the first start.", "# TYPE obsplan_backfilled gauge"]
    lines += [f'obsplan_backfilled{{src="om"}} {i} {BACKFILL_START + 60 * i}' for i in range(60)]
    source.write_text("\n".join(lines) + "\n# EOF\n")
    promtool = fetch_debs.extracted_file("bookworm", "prometheus", "usr/bin/promtool")
    data.mkdir(parents=True)
    done = subprocess.run(
        [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.parent.name for p in data.glob("*/meta.json")], "no block written"


def _backfilled(port: int) -> list[list[Any]]:
    at = BACKFILL_START + 3600
    data = _get(port, "/api/v1/query", query="obsplan_backfilled[2h]", time=str(at))
    [series] = data["data"]["result"]
    return list(series["values"])


def _get(port: int, path: str, **params: str) -> Any:
    r = httpx.get(f"http://127.0.0.1:{port}{path}", params=params, timeout=10, trust_env=False)
    r.raise_for_status()
    return r.json()


def _build_version(port: int, metric: str) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, metric)


def _samples(port: int, window_end: float, seconds: int) -> list[list[Any]]:
    """Every raw sample of `up{job="prometheus"}` in (end - seconds, end]: what a TSDB must keep."""
    data = _get(port, "/api/v1/query", query=f'up{{job="prometheus"}}[{seconds}s]', time=f"{window_end:.3f}")
    [series] = data["data"]["result"]
    return list(series["values"])


def _wait_samples(port: int, count: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        data = _get(port, "/api/v1/query", query='count_over_time(up{job="prometheus"}[1h])')
        result = data["data"]["result"]
        if result and float(result[0]["value"][1]) >= count:
            return
        assert time.monotonic() < deadline, f"prometheus never scraped {count} samples: {result}"
        time.sleep(0.2)


def _step_events(events: list[dict[str, Any]], step: str) -> list[str]:
    return [e["event"] for e in events if (e.get("metadata") or {}).get("step") == step or e.get("step") == step]


def test_ladder_2_to_3_refused_then_fixed_keeps_every_sample(stack: Stack) -> None:
    first = {c: v[0] for c, v in LADDER.items()}
    stack.write_prometheus_yml("v1")  # 2.x accepts the v1 Alertmanager API; 3.x does not
    stack.pin(first)
    rc, _, out = stack.apply()
    assert rc == 0, out
    prom = stack.ports["prometheus"]
    assert _build_version(prom, "prometheus_build_info") == "2.42.0"
    conf = (stack.root / "etc/supervisor/conf.d/prometheus.conf").read_text()
    assert "--storage.tsdb.retention.time=30d" in conf  # the .time form wherever it exists (from 2.7.0)
    _wait_samples(prom, 8)
    t_end = time.time()
    before = _samples(prom, t_end, 600)
    assert len(before) >= 8
    backfilled = _backfilled(prom)
    assert len(backfilled) == 60

    # the ladder in one apply: 2.42.0 → 2.53.3 (the restated hop) → 3.5.3, refused before its switch
    stack.pin({**first, "prometheus": "3.5.3", "alertmanager": "0.28.1"})
    lock = json.loads(stack.lock.read_text())
    prom_steps = [
        (s["from_version"], s["to_version"], s["rollback_floor"])
        for s in lock["plan"]["steps"]
        if s["component"] == "prometheus"
    ]
    assert prom_steps == [("2.42.0", "2.53.3", None), ("2.53.3", "3.5.3", "2.53.0")]
    rc, events, out = stack.apply()
    assert rc == 1, out
    refusal = next((e for e in events if e.get("event") == "step_failed" and e.get("component") == "prometheus"), None)
    assert refusal is not None, out
    print("\n--- 2 → 3 refusal ---\n" + json.dumps(refusal, indent=1))
    _assert_refusal(stack, refusal, events)
    am = [e["metadata"] for e in events if e.get("event") == "config_checked" and e.get("component") == "alertmanager"]
    assert [(m["tool"], m["version"], m["outcome"]) for m in am] == [("amtool", "0.28.1", "accepted")]
    pid = stack.pid("prometheus")
    assert _build_version(prom, "prometheus_build_info") == "2.53.3"

    # the same config again: refused the same way, the running process untouched
    rc, events, out = stack.apply()
    assert rc == 1, out
    refusal = next(e for e in events if e.get("event") == "step_failed" and e.get("component") == "prometheus")
    _assert_refusal(stack, refusal, events)
    assert stack.pid("prometheus") == pid

    # --dry-run runs the same check and reports it
    rc, events, out = stack.apply("--dry-run")
    checked = [e for e in events if e.get("event") == "config_checked" and e.get("component") == "prometheus"]
    assert checked and checked[-1]["metadata"]["outcome"] == "refused", out
    assert stack.pid("prometheus") == pid

    # fixed: 3.5.3 serves, every sample scraped under 2.42.0 still answered
    stack.write_prometheus_yml("v2")
    rc, events, out = stack.apply("--rehearse")  # as --mode safe: the one-way step is tried on a copy first
    assert rc == 0, out
    assert _build_version(prom, "prometheus_build_info") == "3.5.3"
    _assert_rehearsed(stack, events)
    checked = {
        (e["component"], e["metadata"]["version"], e["metadata"]["outcome"])
        for e in events
        if e.get("event") == "config_checked"
    }
    assert checked == {("prometheus", "3.5.3", "accepted")}
    _wait_ready(prom)
    assert _samples(prom, t_end, 600) == before and _backfilled(prom) == backfilled
    conf = (stack.root / "etc/supervisor/conf.d/prometheus.conf").read_text()
    assert "--storage.tsdb.retention.time=30d" in conf and "--storage.tsdb.retention=" not in conf

    _newest_with_verify(stack)
    _rollbacks(stack, t_end, before)
    assert _backfilled(prom) == backfilled


VERIFY = """\
verify:
  within_seconds: {within}
  expressions:
    alertmanager:
      - 'prometheus_notifications_alertmanagers_discovered >= 1'
      - 'ALERTS{{alertname="ObsplanAlwaysFiring", alertstate="firing"}}'
{extra}"""


def _newest_with_verify(stack: Stack) -> None:
    """The rest of the stack to its newest Debian builds, with the policy's post-step PromQL: a node_exporter
    expression that never holds rolls its step back; without it every step verifies, alertmanager 0.33.1's
    config is checked by its own amtool, and the always-firing alert reaches it."""
    newest = {c: v[-1] for c, v in LADDER.items()}
    never = "    node_exporter: ['up{job=\"node\"} == 42']\n"
    stack.pin(newest, policy=VERIFY.format(within=5, extra=never))
    rc, first, out = stack.apply()
    assert rc == 1, out
    failed = [e for e in first if e.get("component") == "node_exporter" and "reason" in e.get("metadata", {})]
    assert [(e["event"], e["metadata"]["reason"]) for e in failed] == [("rolled_back", "verify_failed")], out
    assert 'up{job="node"} == 42 (empty result)' in failed[0]["metadata"]["error"]
    assert _build_version(stack.ports["node_exporter"], "node_exporter_build_info") == "1.9.0"  # rolled back

    stack.pin(newest, policy=VERIFY.format(within=60, extra=""))
    rc, events, out = stack.apply()
    assert rc == 0, out
    checked = {  # alertmanager needs nothing of node_exporter: its step went ahead in the first run (issue 19.11)
        (e["component"], e["metadata"]["version"], e["metadata"]["tool"])
        for e in first + events
        if e.get("event") == "config_checked"
    }
    assert ("alertmanager", "0.33.1", "amtool") in checked, checked
    verified = {e["component"] for e in first + events if e.get("event") == "post_verified"}  # either run
    assert verified == {"alertmanager"}, verified
    for comp, metric in (
        ("alertmanager", "alertmanager_build_info"),
        ("node_exporter", "node_exporter_build_info"),
        ("mysqld_exporter", "mysqld_exporter_build_info"),
        ("nginx_exporter", "nginx_exporter_build_info"),
    ):
        assert _build_version(stack.ports[comp], metric) == LADDER[comp][-1], comp
    _alert_reaches_alertmanager(stack.ports["alertmanager"])


def _alert_reaches_alertmanager(port: int) -> None:
    """Prometheus 3.5.3 delivers the always-firing alert to Alertmanager 0.33.1 (re-sent at least every minute)."""
    deadline = time.monotonic() + 90
    while True:
        alerts = httpx.get(f"http://127.0.0.1:{port}/api/v2/alerts", timeout=10, trust_env=False).json()
        if any(a["labels"].get("alertname") == "ObsplanAlwaysFiring" for a in alerts):
            return
        assert time.monotonic() < deadline, alerts
        time.sleep(0.2)


def _assert_refusal(stack: Stack, refusal: dict[str, Any], events: list[dict[str, Any]]) -> None:
    meta = refusal["metadata"]
    assert meta["reason"] == "config_refused" and meta["stage"] == "precheck", refusal
    config = str(stack.root / "etc/prometheus/prometheus.yml")
    assert "promtool 3.5.3 refuses" in meta["error"] and config in meta["error"]
    assert "expected Alertmanager api version to be one of [v2] but got v1" in meta["error"]
    after = _step_events(events, "prometheus-3.5.3")
    assert "checkpoint" not in after and "switched" not in after, after
    assert (stack.root / "opt/obsplan/prometheus/current").readlink().name == "2.53.3"


def _assert_rehearsed(stack: Stack, events: list[dict[str, Any]]) -> None:
    [rehearsed] = [e for e in events if e.get("event") == "rehearsed"]
    print("\n--- rehearsal of prometheus 3.5.3 ---\n" + json.dumps(rehearsed, indent=1))
    meta = rehearsed["metadata"]
    assert (rehearsed["component"], meta["step"], meta["series"]) == ("prometheus", "prometheus@3.5.3", "up")
    assert meta["answered"] >= 1 and meta["port"] != stack.ports["prometheus"] and meta["seconds"] > 0
    assert meta["copied_files"] >= 1 and meta["linked_files"] >= 3  # WAL copied; the block's files hard-linked
    order = [e["event"] for e in events if (e.get("metadata") or {}).get("step") == "prometheus@3.5.3"]
    assert (
        order.index("config_checked") < order.index("rehearsed") < order.index("checkpoint") < order.index("switched")
    )
    assert not (stack.root / "var/lib/obsplan/rehearsal/prometheus").exists()  # the copy is discarded


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=5, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _rollbacks(stack: Stack, t_end: float, before: list[list[Any]]) -> None:
    """Below the floor refused; the point restored (its saved config checked by 2.53.3's promtool) serves the
    data; after a switch back to 3.5.3, a live config with a 3.x-only field is refused for 2.53.3 (no point
    restores another), --force only skips the refusal, and the fixed config rolls back serving the data."""
    prom = stack.ports["prometheus"]
    below = stack.rollback("--to", "2.42.0")
    assert below.returncode == 2 and "below its rollback floor 2.53.0" in below.stderr, below.stderr
    _rolled_to(stack, "2.53.3", t_end, before)  # the rollback point of the 3.5.3 step
    _rolled_to(stack, "3.5.3", t_end, before)  # an installed version: the live config, checked by 3.5.3

    pid = stack.pid("prometheus")
    stack.write_prometheus_yml("v2", "    fallback_scrape_protocol: PrometheusText0.0.4\n")
    refused = stack.rollback("--to", "2.53.3")
    print("\n--- rollback to 2.53.3 with a 3.x-only field ---\n" + refused.stderr)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "promtool 2.53.3 refuses" in refused.stderr and "fallback_scrape_protocol" in refused.stderr
    assert stack.pid("prometheus") == pid and _build_version(prom, "prometheus_build_info") == "3.5.3"
    # --force skips the refusal, not the consequence: 2.53.3 cannot start with it, so the rollback fails and
    # switches back to 3.5.3, serving again
    forced = stack.rollback("--to", "2.53.3", "--force", "--health-timeout", "20")
    assert forced.returncode == 1 and "config_refusal_forced" in forced.stdout, forced.stdout + forced.stderr
    assert _build_version(prom, "prometheus_build_info") == "3.5.3"
    stack.write_prometheus_yml("v2")
    _rolled_to(stack, "2.53.3", t_end, before)
    # every switch stopped Prometheus gracefully (SIGTERM, waited): each version said goodbye, no WAL repair
    log = (stack.root / "var/log/obsplan/prometheus.log").read_text(errors="replace")
    assert log.count("See you next time!") >= 5, log[-3000:]
    damaged = [ln for ln in log.splitlines() if "attempting repair" in ln or "corrupt" in ln.lower()]
    assert not damaged, damaged


def _rolled_to(stack: Stack, version: str, t_end: float, before: list[list[Any]]) -> None:
    done = stack.rollback("--to", version)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "outcome=accepted" in done.stdout and f"version={version}" in done.stdout, done.stdout
    prom = stack.ports["prometheus"]
    assert _build_version(prom, "prometheus_build_info") == version
    _wait_ready(prom)
    assert _samples(prom, t_end, 600) == before
