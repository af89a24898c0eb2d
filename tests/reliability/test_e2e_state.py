"""End-to-end (real node_exporter under a real supervisord): an install deleted behind obsplan's back is
reinstalled by the next apply (not `nothing_to_do`); a hostile upgrade leaves the running version serving; a
database repaired by `obsplan doctor --repair` lets the next apply converge without reinstalling."""

# ruff: noqa: F811 - the executor's fixtures are imported by name and requested as parameters
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.reporters import RecordingReporter

from tests.executor.conftest import (  # noqa: F401 - fixtures
    PLATFORM,
    Server,
    build_lock,
    free_port,
    hop,
    node_runtime,
    releases,
    root,
    server,
)
from tests.reliability.hostile import cli, snapshot, zip_chain

pytestmark = pytest.mark.e2e
V = "1.5.0"


def _apply(lock: Path, root: Path) -> tuple[engine.ApplyReport, RecordingReporter]:
    rec = RecordingReporter()
    return engine.apply(lock, engine.ApplyOptions(root=root, mode="fast", health_timeout=30.0), rec), rec


def _served(port: int) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, "node_exporter_build_info")


def _installed(server: Server, releases: dict, root: Path, tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    lock = build_lock(
        tmp_path / "n.lock",
        {"node_exporter": (node_runtime(port), "exporters", [hop(server, releases[("node_exporter", V)], None, V)])},
    )
    report, _ = _apply(lock, root)
    assert report.exit_code == 0, report.to_dict()
    assert _served(port) == V
    return lock, port


def test_deleted_version_directory_is_reinstalled(
    server: Server,
    releases: dict,
    root: Path,
    tmp_path: Path,
) -> None:
    lock, port = _installed(server, releases, root, tmp_path)
    shutil.rmtree(root / "opt/obsplan/node_exporter" / V)
    (entry,) = json.loads(cli("status", "--root", str(root), "--json").output)
    assert entry["health"] == "broken" and not entry["up_to_date"]
    report, rec = _apply(lock, root)
    assert report.exit_code == 0, report.to_dict()
    assert [r.status for r in report.results] == ["ok"] and not rec.find("nothing_to_do")
    assert (root / "opt/obsplan/node_exporter" / V).is_dir()
    assert _served(port) == V
    assert (root / "usr/local/bin/node_exporter").exists()
    assert cli("doctor", "--root", str(root), "--service-manager", "supervisord").exit_code == 0


def test_hostile_upgrade_keeps_the_running_version(
    server: Server,
    releases: dict,
    root: Path,
    tmp_path: Path,
) -> None:
    _, port = _installed(server, releases, root, tmp_path)
    evil = zip_chain(tmp_path / "node_exporter-9.9.9.linux-amd64.zip", 5)  # resolves to <root>/ESCAPED
    h = hop(server, evil, V, "9.9.9")
    lock = build_lock(
        tmp_path / "evil.lock",
        {"node_exporter": (node_runtime(port), "exporters", [hop(server, releases[("node_exporter", V)], None, V), h])},
    )
    data = json.loads(lock.read_text())  # the zip format, re-sealed as an attacker with write access to the lock could
    from obsplan.lock.lockfile import Lock
    from obsplan.safeio.fsio import write_atomic

    for step in data["plan"]["steps"]:
        for a in step["artifacts"].values():
            if a["filename"].endswith(".zip"):
                a["format"] = "zip"
    for a in data["components"]["node_exporter"]["artifacts"].values():
        a["format"] = "zip"
    write_atomic(lock, Lock.model_validate(data).sealed().to_json())
    before = snapshot(root / "opt")
    report, _ = _apply(lock, root)
    assert report.exit_code == 1
    assert [r.status for r in report.results] == ["up_to_date", "failed"]
    assert report.results[-1].reason == "UnsafeArchive"
    assert not list(root.rglob("ESCAPED"))
    assert snapshot(root / "opt") == before
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == V
    assert _served(port) == V


def test_repaired_database_converges_without_reinstalling(
    server: Server,
    releases: dict,
    root: Path,
    tmp_path: Path,
) -> None:
    lock, port = _installed(server, releases, root, tmp_path)
    db = root / "var/lib/obsplan/state.db"
    db.write_bytes(b"garbage" * 1000)
    assert cli("apply", str(lock), "--root", str(root)).exit_code == 1
    assert cli("doctor", "--root", str(root), "--repair").exit_code == 0
    report, rec = _apply(lock, root)
    assert report.exit_code == 0, report.to_dict()
    assert [r.status for r in report.results] == ["up_to_date"] and rec.find("nothing_to_do")
    assert _served(port) == V
