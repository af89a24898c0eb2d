"""End-to-end: Debian's prometheus 2.42.0 → 2.53.3 keeps its TSDB; rollback below the floor is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.reporters import RecordingReporter

from .conftest import Server, build_lock, free_port, hop, prometheus_runtime
from .test_e2e_node_exporter import _cli

pytestmark = pytest.mark.e2e


def _served(port: int) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, "prometheus_build_info")


def test_prometheus_upgrade_keeps_data_and_floor(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    h1 = hop(server, releases[("prometheus", "2.42.0")], None, "2.42.0")
    # the floor is artificial (real one: 2.55.0 after 3.x): after 2.53.3, never below 2.50.0
    h2 = hop(server, releases[("prometheus", "2.53.3")], "2.42.0", "2.53.3", floor="2.50.0")
    runtime = prometheus_runtime(port)
    first = build_lock(tmp_path / "first.json", {"prometheus": (runtime, "core", [h1])})
    both = build_lock(tmp_path / "both.json", {"prometheus": (runtime, "core", [h1, h2])})
    opts = engine.ApplyOptions(root=root, mode="fast", health_timeout=60.0)

    report = engine.apply(first, opts, RecordingReporter())
    assert report.exit_code == 0, report.to_dict()
    assert _served(port) == "2.42.0"
    data = root / "var/lib/prometheus"
    assert (data / "wal").is_dir()  # a TSDB created by 2.42.0
    (data / "obsplan-marker").write_text("written while 2.42.0 ran\n")
    config = root / "etc/prometheus/prometheus.yml"
    assert config.is_file()

    report = engine.apply(both, opts, rec := RecordingReporter())
    assert report.exit_code == 0, report.to_dict()
    assert [r.status for r in report.results] == ["up_to_date", "ok"]
    assert _served(port) == "2.53.3"  # Debian prints 2.53.3+ds1: normalised
    assert (data / "obsplan-marker").read_text() == "written while 2.42.0 ran\n"
    assert (data / "wal").is_dir()
    point = rec.find("checkpoint", "prometheus")[0].metadata
    assert point["data_dir"] == str(data)
    conf = (root / "etc/supervisor/conf.d/prometheus.conf").read_text()
    assert f"--storage.tsdb.path={data}" in conf and f"--web.listen-address=:{port}" in conf

    listing = json.loads(_cli("rollback", "prometheus", "--list", "--root", str(root), "--json").stdout)
    assert listing["floor"] == "2.50.0"
    assert {v["version"]: v["below_floor"] for v in listing["versions"]} == {"2.42.0": True, "2.53.3": False}

    refused = _cli("rollback", "prometheus", "--to", "2.42.0", "--root", str(root))
    assert refused.returncode == 2
    assert "below its rollback floor 2.50.0" in refused.stderr, refused.stderr
    refused_point = _cli("rollback", "prometheus", "--root", str(root))  # newest point is 2.42.0 too
    assert refused_point.returncode == 2
    assert os.readlink(root / "opt/obsplan/prometheus/current") == "2.53.3"
    assert _served(port) == "2.53.3"
