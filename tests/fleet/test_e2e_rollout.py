"""End-to-end fleet rollouts: four network-namespace hosts over real SSH, real node_exporter 1.5.0 → 1.9.0,
gates read from a real Prometheus."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import OBSPLAN, Prometheus, Release, events, install_base, rollout, served
from .harness import Fleet

pytestmark = pytest.mark.e2e

GATE = 'min_over_time(up{instance=~"($HOSTS):9100"}[2s])'
FAST = ["--mode", "fast", "--soak", "2", "--interval", "1", "--initial-delay", "2.5"]


def test_canary_and_two_batches_pass(fleet: Fleet, node_releases: dict[str, Release], prometheus: Prometheus,
                                     tmp_path: Path) -> None:  # fmt: skip
    install_base(fleet, node_releases["1.5.0"], tmp_path)
    prometheus.wait_up(4)
    rel = node_releases["1.9.0"]
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN)
    proc = rollout(str(rel.lock), "--inventory", str(inv), "--bundle", str(rel.bundle), "--gate", GATE,
                   "--prometheus", prometheus.url, *FAST, "--json", state=tmp_path / "state")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    evs = events(proc)
    assert [e["event"] for e in evs if e["event"].startswith(("batch_", "gate_p", "gate_f", "rollout_"))] == [
        "rollout_planned", "batch_started", "gate_passed", "batch_started", "gate_passed", "batch_started",
        "gate_passed", "rollout_done"]  # fmt: skip
    assert [b["hosts"] for b in evs[0]["batches"]] == [["host1"], ["host2"], ["host3", "host4"]]
    assert all(served(h.address) == "1.9.0" for h in fleet.hosts)
    status = rollout("--status", state=tmp_path / "state")
    assert status.returncode == 0 and "| batch 2 | host4 | apply | ok |" in status.stdout, status.stdout
    print(status.stdout)
