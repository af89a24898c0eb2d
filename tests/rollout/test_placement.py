"""`rollout --dry-run` on an inventory that lists the monitoring host first (issue 22, items 2 and 3): the
canary is never the gates' Prometheus, the monitoring host goes last, the default `--prometheus` is the host
that runs it, `--canary-hosts` by name or label, and each host's components come from the inventory, else
from its facts (`--facts DIR`), else are decided at run time; `--dry-run` says why each host is where it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from obsplan.lock.hostfacts import ComponentFacts, HostFacts

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "plans" / "production.lock"
MON = ["prometheus", "alertmanager", "grafana"]


def _dry_run(inv: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "obsplan", "rollout", str(LOCK), "--inventory", str(inv), "--dry-run", "--json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")], proc.stderr


def _inventory(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(json.dumps({"hosts": hosts}))
    return path


def _facts(directory: Path, host: str, served: dict[str, str]) -> None:
    directory.mkdir(exist_ok=True)
    facts = HostFacts(
        format=1,
        obsplan_version="0.1.0",
        platform="linux-amd64",
        root="/",
        collected_at="2026-12-04T00:00:00Z",
        components={name: ComponentFacts(served=v) for name, v in served.items()} | {"loki": ComponentFacts()},
    )
    (directory / f"{host}.json").write_text(facts.model_dump_json())


def _hosts(evs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["host"]: e for e in evs if e["event"] == "dry_run_host"}


def test_monitoring_host_listed_first_is_neither_canary_nor_early(tmp_path: Path) -> None:
    inv = _inventory(
        tmp_path,
        {
            "mon1": {"address": "10.9.0.100", "components": MON},
            "db1": {"address": "10.9.0.3", "components": ["node_exporter", "promtail", "mysqld_exporter"]},
            "web1": {"address": "10.9.0.1", "components": ["node_exporter", "nginx_exporter"]},
            "web2": {"address": "10.9.0.2", "components": ["node_exporter", "nginx_exporter"]},
        },
    )
    code, evs, err = _dry_run(inv, "--gate", "up", "--batches", "50%,100%")
    assert code == 0, err
    assert [b["hosts"] for b in evs[0]["batches"]] == [["web1"], ["db1"], ["web2", "mon1"]]
    assert evs[0]["prometheus"] == "http://10.9.0.100:9090"  # the host whose components include prometheus
    why = {h: e["why"] for h, e in _hosts(evs).items()}
    assert why["web1"].startswith("canary: fewest components (2)")
    assert why["mon1"].startswith("batch 2 (last): serves the gates' Prometheus")
    assert why["db1"].startswith("batch 1: inventory order")
    plain = subprocess.run(
        [sys.executable, "-m", "obsplan", "rollout", str(LOCK), "--inventory", str(inv), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "mon1 (10.9.0.100): alertmanager@" in plain and "batch 2 (last): serves the gates' Prometheus" in plain, (
        plain
    )


def test_gate_prometheus_by_address_and_explicit_canaries(tmp_path: Path) -> None:
    hosts = {
        "mon1": {"address": "10.9.0.100", "labels": {"role": "monitoring"}},
        "web1": {"address": "10.9.0.1", "labels": {"role": "web"}, "components": ["node_exporter"]},
        "web2": {"address": "10.9.0.2", "labels": {"role": "web", "ring": "0"}, "components": ["node_exporter"]},
        "web3": {"address": "10.9.0.3", "labels": {"role": "web", "ring": "0"}, "components": ["node_exporter"]},
    }
    inv = _inventory(tmp_path, hosts)
    code, evs, err = _dry_run(inv, "--gate", "up", "--prometheus", "http://10.9.0.100:9090", "--batches", "100%")
    assert code == 0, err
    assert [b["hosts"] for b in evs[0]["batches"]] == [["web1"], ["web2", "web3", "mon1"]]
    assert _hosts(evs)["mon1"]["why"].startswith("batch 1 (last): serves the gates' Prometheus")
    code, evs, err = _dry_run(inv, "--canary-hosts", "ring=0", "--batches", "100%")
    assert code == 0, err
    assert [b["hosts"] for b in evs[0]["batches"]] == [["web2", "web3"], ["mon1", "web1"]]  # mon1 not known as such
    assert _hosts(evs)["web3"]["why"].startswith("canary: named by --canary-hosts")
    code, evs, err = _dry_run(inv, "--canary-hosts", "mon1", "--batches", "100%", "--prometheus", "http://10.9.0.100:1")
    assert code == 0, err
    assert evs[0]["batches"][0]["hosts"] == ["mon1"]  # named: the operator's choice
    for bad in ("nosuch", "role=db"):
        code, _evs, err = _dry_run(inv, "--canary-hosts", bad)
        assert code == 2 and "--canary-hosts" in err, err


def test_components_from_inventory_then_facts_then_run_time(tmp_path: Path) -> None:
    inv = _inventory(
        tmp_path,
        {
            "mon1": {"address": "10.9.0.100"},
            "web1": {"address": "10.9.0.1"},
            "web2": {"address": "10.9.0.2", "components": ["nginx_exporter", "node_exporter"]},
            "new1": {"address": "10.9.0.4"},
        },
    )
    code, evs, err = _dry_run(inv)  # no facts: mon1, web1 and new1 are decided at run time, never "the whole lock"
    assert code == 0, err
    hosts = _hosts(evs)
    assert hosts["web1"]["steps"] == [] and hosts["web1"]["steps_note"] == "decided from the host's facts at run time"
    assert hosts["web2"]["steps"] == ["nginx_exporter@1.5.3"] and hosts["web2"]["steps_note"] is None
    code, _evs, err = _dry_run(inv, "--gate", "up")
    assert code == 2 and "--prometheus" in err  # no host is known to run prometheus: no guessed default

    facts = tmp_path / "facts"
    _facts(facts, "mon1", {"prometheus": "2.53.0", "grafana": "10.4.19+security-01"})
    _facts(facts, "web1", {"nginx_exporter": "1.4.0", "node_exporter": "1.9.0"})
    code, evs, err = _dry_run(inv, "--facts", str(facts), "--gate", "up")
    assert code == 0, err
    hosts = _hosts(evs)
    assert evs[0]["prometheus"] == "http://10.9.0.100:9090"
    assert hosts["mon1"]["components"] == ["prometheus", "grafana"]
    assert {s.split("@")[0] for s in hosts["mon1"]["steps"]} == {"prometheus", "grafana"}
    assert hosts["web1"]["steps"] == ["nginx_exporter@1.5.3"]  # loki is in the facts but not installed
    assert "components from the host's facts: nginx_exporter, node_exporter" in hosts["web1"]["why"]
    assert hosts["new1"]["steps_note"] == "decided from the host's facts at run time"
    assert [b["hosts"] for b in evs[0]["batches"]][-1][-1] == "mon1"
    assert evs[0]["batches"][0]["hosts"] == ["web1"]  # 2 known components before new1's unknown ones
    code, _evs, err = _dry_run(inv, "--facts", str(tmp_path / "missing"))
    assert code == 2 and "--facts" in err


def test_status_of_the_fleet_from_facts(tmp_path: Path) -> None:
    """`obsplan status --facts DIR [--lock L]`: what runs where, host × component, against the lock's targets."""
    facts = tmp_path / "facts"
    _facts(facts, "mon1", {"prometheus": "3.13.2", "grafana": "10.4.19+security-01"})
    _facts(facts, "web1", {"nginx_exporter": "1.5.3"})
    cmd = [sys.executable, "-m", "obsplan", "status", "--facts", str(facts)]
    plain = subprocess.run([*cmd, "--lock", str(LOCK)], capture_output=True, text=True, check=False)
    assert plain.returncode == 0, plain.stderr
    lines = [line.split() for line in plain.stdout.splitlines()]
    assert lines[0] == ["host", "component", "installed", "served", "target", "drift"]
    assert ["mon1", "prometheus", "-", "3.13.2", "3.13.2", "in", "sync"] in lines
    assert ["mon1", "grafana", "-", "10.4.19+security-01", "12.4.2", "behind", "the", "lock"] in lines
    assert ["web1", "prometheus", "-", "-", "3.13.2", "not", "installed"] in lines
    rows = json.loads(subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=True).stdout)
    assert [(r["host"], r["component"], r["served"], r["target"]) for r in rows] == [
        ("mon1", "grafana", "10.4.19+security-01", None),
        ("mon1", "prometheus", "3.13.2", None),
        ("web1", "nginx_exporter", "1.5.3", None),
    ]  # without --lock: only what each host has


def test_flags_that_only_mean_something_elsewhere_are_refused(tmp_path: Path) -> None:
    """`--facts` reads facts for a dry run only (a rollout collects them live); the resume flags need --resume."""
    from click.testing import CliRunner

    from obsplan.cli.main import main

    inv = _inventory(tmp_path, {"web1": {"address": "127.0.0.1", "port": 1, "components": ["loki"]}})
    base = ["rollout", str(LOCK), "--inventory", str(inv), "--state-dir", str(tmp_path / "state")]
    for extra, key in (
        (["--facts", str(tmp_path)], "--facts"),
        (["--override-gates"], "--override-gates"),
        (["--retry-failed", "--dry-run"], "--retry-failed"),
    ):
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code == 2 and key in result.output, result.output
    assert not (tmp_path / "state").exists()
