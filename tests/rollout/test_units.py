"""Rollout units with real parts: batch planning, both inventory formats, gate judging against a local HTTP
server speaking the Prometheus query API, the SQLite journal, and `rollout --dry-run` through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from obsplan.kernel.errors import ObsplanError
from obsplan.rollout.batches import plan_batches
from obsplan.rollout.gates import GateSpec, expand, run_gate
from obsplan.rollout.inventory.hosts import load_inventory, select
from obsplan.rollout.journal.rollouts_db import Journal
from tests.static_server import QuietHandler, start_static_server

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "plans" / "production.lock"


def test_batches_are_cumulative_targets() -> None:
    hosts = [f"h{i}" for i in range(1, 5)]
    assert [(b.name, b.hosts) for b in plan_batches(hosts, 1, "10%,50%,100%")] == [
        ("canary", ("h1",)),
        ("batch 1", ("h2",)),
        ("batch 2", ("h3", "h4")),
    ]
    assert [b.hosts for b in plan_batches(hosts, 0, "1,100%")] == [("h1",), ("h2", "h3", "h4")]
    big = plan_batches([f"h{i}" for i in range(20)], 2, "10%,50%,100%")
    assert [len(b.hosts) for b in big] == [2, 8, 10]  # 10 % of 20 = 2, reached by the canary
    for bad, key in (("10%,50%", "--batches"), ("50%,10%,100%", "--batches"), ("x,100%", "--batches")):
        with pytest.raises(ObsplanError) as exc:
            plan_batches(hosts, 1, bad)
        assert exc.value.key == key


def test_obsplan_inventory_defaults_and_limit(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yaml"
    inv.write_text("""
defaults: {ssh_user: deploy, root: /srv, service_manager: supervisord, obsplan: /opt/obsplan/bin/obsplan}
prometheus: http://10.0.0.5:9090
hosts:
  web1: {address: 10.0.0.11, labels: {role: web}, components: [node_exporter, nginx_exporter]}
  mon1: {address: 10.0.0.5, port: 2222, root: /, components: [prometheus]}
""")
    loaded = load_inventory(inv)
    web1, mon1 = loaded.hosts
    assert (web1.ssh_user, web1.root, web1.port, web1.obsplan) == ("deploy", "/srv", 22, "/opt/obsplan/bin/obsplan")
    assert (mon1.root, mon1.port, mon1.known_hosts) == ("/", 2222, "~/.ssh/known_hosts")
    assert web1.components == ["node_exporter", "nginx_exporter"] and web1.labels == {"role": "web"}
    assert loaded.prometheus == "http://10.0.0.5:9090"
    assert [h.name for h in select(loaded, ["mon1"], str(inv))] == ["mon1"]
    with pytest.raises(ObsplanError, match="unknown host"):
        select(loaded, ["db9"], str(inv))
    inv.write_text("hosts:\n  web1: {address: 10.0.0.11, colour: blue}\n")
    with pytest.raises(ObsplanError) as exc:
        load_inventory(inv)
    assert exc.value.key == "hosts.web1.colour"


def test_ansible_inventory_read_as_is(tmp_path: Path) -> None:
    inv = tmp_path / "ansible.yml"
    inv.write_text("""
all:
  vars: {ansible_user: ops, obsplan_prometheus: "http://mon:9090"}
  children:
    web:
      hosts:
        web1: {ansible_host: 10.1.0.11, ansible_port: 2201, ansible_ssh_private_key_file: /keys/web}
        web2: {ansible_host: 10.1.0.12}
      vars: {obsplan_components: [node_exporter]}
    db:
      hosts:
        web2: {}
        db1: {ansible_host: 10.1.0.21, ansible_user: root, obsplan_root: /srv/db}
""")
    loaded = load_inventory(inv)
    hosts = {h.name: h for h in loaded.hosts}
    assert (hosts["web1"].address, hosts["web1"].port, hosts["web1"].ssh_key) == ("10.1.0.11", 2201, "/keys/web")
    assert hosts["web1"].ssh_user == "ops" and hosts["db1"].ssh_user == "root"
    assert hosts["web2"].labels == {"db": "true", "web": "true"}
    assert hosts["web1"].components == ["node_exporter"] and hosts["db1"].components is None
    assert hosts["db1"].root == "/srv/db" and loaded.prometheus == "http://mon:9090"


# ---- gates against a local server speaking /api/v1/query -----------------------------------------------


class PromHandler(QuietHandler):
    answers: dict[str, list[dict[str, Any]]] = {}
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        from urllib.parse import parse_qs, urlparse

        query = parse_qs(urlparse(self.path).query)["query"][0]
        self.seen.append(query)
        queue = self.answers[query]
        body = json.dumps(queue.pop(0) if len(queue) > 1 else queue[0]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


def _vector(*values: float) -> dict[str, Any]:
    result = [{"metric": {"instance": f"h{i}"}, "value": [0, str(v)]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def _gate(url: str, answers: dict[str, list[dict[str, Any]]], failure_limit: int, soak: float = 4) -> tuple[bool, list]:
    PromHandler.answers = answers
    PromHandler.seen = []
    spec = GateSpec(list(answers), url, soak=soak, interval=1, initial_delay=0, failure_limit=failure_limit)
    got: list = []
    ok = run_gate(spec, [], lambda n, m: got.append(m), sleep=lambda s: None)
    return ok, got


def test_gate_measurements(tmp_path: Path) -> None:
    server = start_static_server(tmp_path, PromHandler)
    try:
        ok, ms = _gate(server.url, {"up": [_vector(1, 1)]}, 0)
        assert ok and len(ms) == 5 and all(m.ok for m in ms)  # 1 + soak // interval measurements
        ok, ms = _gate(server.url, {"up": [_vector(1, 1), _vector(1, 0), _vector(1, 1)]}, 0)
        assert not ok and [m.ok for m in ms] == [True, False]  # stops at the first failure beyond the limit
        assert ms[1].results[0]["zero_series"] == [{"instance": "h1"}]
        ok, ms = _gate(server.url, {"up": [_vector(1, 1), _vector(1, 0), _vector(1, 1)]}, 1)
        assert ok and [m.ok for m in ms] == [True, False, True, True, True]
        ok, ms = _gate(server.url, {"up": [_vector()]}, 0)
        assert not ok and ms[0].results[0]["reason"] == "empty result"
        error = {"status": "error", "errorType": "bad_data", "error": "parse error"}
        ok, ms = _gate(server.url, {"bad(": [error]}, 0)
        assert not ok and "parse error" in ms[0].results[0]["reason"]
    finally:
        server.stop()
    ok, ms = _gate(server.url, {"up": [_vector(1)]}, 1, soak=1)  # the server is gone: both measurements fail
    assert not ok and all("unreachable" in m.results[0]["reason"] for m in ms)


def test_hosts_expansion_is_a_promql_string_regex() -> None:
    got = expand('up{instance=~"($HOSTS):9100"}', ["web1", "10.0.0.11"])
    assert got == 'up{instance=~"(10\\\\.0\\\\.0\\\\.11|web1):9100"}'


def test_journal_last_result_decides_what_is_done(tmp_path: Path) -> None:
    j = Journal(tmp_path / "state")
    rid = j.start("l.lock", "abc", "inv.yaml", {}, [{"index": 0, "name": "canary", "hosts": ["a"]}])
    j.host_result(rid, 0, "a", "apply", "ok", {})
    j.host_result(rid, 0, "b", "apply", "failed", {"reason": "x"})
    j.host_result(rid, 0, "c", "apply", "ok", {})
    j.host_result(rid, 0, "c", "rollback", "rolled_back", {})
    assert j.applied_ok(rid) == {"a"}
    j.set_status(rid, "halted")
    assert j.rollout()["status"] == "halted" and j.rollout()["finished_at"]
    j.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "obsplan", *args], capture_output=True, text=True, check=False)


def test_dry_run_prints_batches_and_steps_and_touches_nothing(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yaml"
    hosts = {"mon1": {"address": "10.9.0.100", "components": ["prometheus", "alertmanager", "grafana"]}}
    hosts.update({f"web{i}": {"address": f"10.9.0.{i}", "components": ["nginx_exporter"]} for i in range(1, 6)})
    inv.write_text(json.dumps({"hosts": hosts}))  # JSON is YAML
    state = tmp_path / "state"
    proc = _cli(
        "rollout", str(LOCK), "--inventory", str(inv), "--dry-run", "--json", "--state-dir", str(state), "--gate", "up"
    )
    assert proc.returncode == 0, proc.stderr
    evs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [b["hosts"] for b in evs[0]["batches"]] == [["web1"], ["web2", "web3"], ["web4", "web5", "mon1"]]
    assert evs[0]["prometheus"] == "http://10.9.0.100:9090"  # the inventory's host running prometheus
    steps = {e["host"]: e["steps"] for e in evs if e["event"] == "dry_run_host"}
    assert steps["web1"] == ["nginx_exporter@1.5.3"]
    assert {s.split("@")[0] for s in steps["mon1"]} == {"prometheus", "alertmanager", "grafana"}
    assert not state.exists()
    hosts["mon1"]["components"] = ["grafana"]  # no host runs prometheus: no default for the gates
    inv.write_text(json.dumps({"hosts": hosts}))
    bad = _cli("rollout", str(LOCK), "--inventory", str(inv), "--gate", "up", "--dry-run", "--state-dir", str(state))
    assert bad.returncode == 2 and "--prometheus" in bad.stderr
