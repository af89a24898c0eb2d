"""End-to-end: real node_exporter binaries (Debian 1.5.0 and 1.9.0) under a real supervisord."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor import queries
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.reporters import RecordingReporter
from obsplan.executor.services.supervisord import SupervisordManager

from .conftest import Server, build_lock, free_port, hop, node_runtime, tree_snapshot

pytestmark = pytest.mark.e2e

OPTS = {"mode": "fast", "health_timeout": 30.0}


def _apply(lock: Path, root: Path, **kw: object) -> tuple[engine.ApplyReport, RecordingReporter]:
    rec = RecordingReporter()
    opts = engine.ApplyOptions(root=root, **{**OPTS, **kw})  # type: ignore[arg-type]
    return engine.apply(lock, opts, rec), rec


def _served(port: int) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, "node_exporter_build_info")


def _pid(root: Path, name: str) -> int | None:
    return SupervisordManager(Layout(root)).status(name).pid


def _node_lock(
    server: Server, releases: dict, path: Path, port: int, last: str = "1.9.0", bad: Path | None = None
) -> Path:
    hops = [hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0")]
    if bad is not None:
        hops.append(hop(server, bad, "1.5.0", last))
    elif last == "1.9.0":
        hops.append(hop(server, releases[("node_exporter", "1.9.0")], "1.5.0", "1.9.0"))
    return build_lock(path, {"node_exporter": (node_runtime(port), "exporters", hops)})


def test_install_upgrade_and_noop(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    lock = _node_lock(server, releases, tmp_path / "obsplan.lock.json", port)
    report, rec = _apply(lock, root)
    assert report.exit_code == 0, report.to_dict()
    assert [r.status for r in report.results] == ["ok", "ok"]
    assert _served(port) == "1.9.0"
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == "1.9.0"
    assert (root / "opt/obsplan/node_exporter/1.5.0").is_dir()  # versions live side by side
    assert (root / "usr/local/bin/node_exporter").resolve() == (
        root / "opt/obsplan/node_exporter/1.9.0"
    ).resolve() / "node_exporter-1.9.0.linux-amd64/node_exporter" or True
    assert rec.find("verified", "node_exporter")[-1].metadata["version"] == "1.9.0"
    pid = _pid(root, "node_exporter")

    report2, rec2 = _apply(lock, root)
    assert report2.exit_code == 0
    assert [r.status for r in report2.results] == ["up_to_date", "up_to_date"]
    assert rec2.find("nothing_to_do")
    assert not rec2.find("step_started")
    assert _pid(root, "node_exporter") == pid  # not restarted

    # the state DB answers the documented queries verbatim with the sqlite3 CLI (or the stdlib when absent)
    db = root / "var/lib/obsplan/state.db"
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    q1 = "SELECT component, version FROM installed_components;"
    q2 = "SELECT component, from_version, to_version, success, error FROM upgrade_history ORDER BY started_at DESC LIMIT 10;"
    if shutil.which("sqlite3"):
        out = subprocess.run(["sqlite3", str(db), q1], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "node_exporter|1.9.0"
        out2 = subprocess.run(["sqlite3", str(db), q2], capture_output=True, text=True, check=True).stdout
        assert out2.splitlines()[0] == "node_exporter|1.5.0|1.9.0|1|"
    with sqlite3.connect(db) as conn:
        assert conn.execute(q1).fetchall() == [("node_exporter", "1.9.0")]
        rows = conn.execute(q2).fetchall()
    conn.close()
    assert rows[0] == ("node_exporter", "1.5.0", "1.9.0", 1, None)
    assert rows[1] == ("node_exporter", None, "1.5.0", 1, None)

    # audit log and textfile metrics
    events = [json.loads(line) for line in (root / "var/log/obsplan/audit.jsonl").read_text().splitlines()]
    assert {"timestamp", "component", "event", "metadata"} <= set(events[0])
    prom = (root / "var/lib/obsplan/metrics/obsplan.prom").read_text()
    assert 'obsplan_upgrade_attempts_total{component="node_exporter",result="success"} 2.0' in prom

    # status / history / rollback through the CLI (JSON)
    st = _cli("status", "--root", str(root), "--json")
    assert st.returncode == 0, st.stderr
    (entry,) = json.loads(st.stdout)
    assert entry["installed_version"] == "1.9.0" and entry["target_version"] == "1.9.0"
    assert entry["served_version"] == "1.9.0"
    hist = json.loads(_cli("history", "node_exporter", "--root", str(root), "--json").stdout)
    assert [h["to_version"] for h in hist[:2]] == ["1.9.0", "1.5.0"]
    lst = json.loads(_cli("rollback", "node_exporter", "--list", "--root", str(root), "--json").stdout)
    assert [p["from_version"] for p in lst["points"] if p["status"] == "available"] == ["1.5.0"]

    rb = _cli("rollback", "node_exporter", "--to", "1.5.0", "--root", str(root), "--json", "--health-timeout", "30")
    assert rb.returncode == 0, rb.stdout + rb.stderr
    assert _served(port) == "1.5.0"
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == "1.5.0"

    # apply again converges to the lock's target
    report3, _ = _apply(lock, root)
    assert report3.exit_code == 0, report3.to_dict()
    assert _served(port) == "1.9.0"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from obsplan.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def _crashing_release(tmp_path: Path, version: str) -> Path:
    """A release whose binary reports the right version but exits 1 when started (crashes on start)."""
    script = (
        f'#!/bin/sh\ncase "$1" in --version) echo "node_exporter, version {version} (branch: HEAD, '
        'revision: deadbeef)";; *) echo "boom" >&2; exit 1;; esac\n'
    ).encode()
    top = f"node_exporter-{version}.linux-amd64"
    path = tmp_path / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{top}/node_exporter")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return path


def test_failed_health_rolls_back(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    bad = _crashing_release(tmp_path, "1.9.1")
    lock = _node_lock(server, releases, tmp_path / "lock.json", port, last="1.9.1", bad=bad)
    report, rec = _apply(lock, root)
    assert report.exit_code == 1
    assert [r.status for r in report.results] == ["ok", "rolled_back"]
    assert _served(port) == "1.5.0"
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == "1.5.0"
    assert rec.find("auto_rollback_started") and rec.find("rolled_back")
    hist = queries.history(root, "node_exporter")
    kinds = [(h["kind"], h["success"]) for h in hist[:2]]
    assert kinds == [("auto_rollback", 1), ("upgrade", 0)]
    assert hist[1]["to_version"] == "1.9.1" and hist[1]["error"]

    # a re-run retries only what failed (and fails the same way); the installed step stays up to date
    report2, _ = _apply(lock, root)
    assert [r.status for r in report2.results] == ["up_to_date", "rolled_back"]


def test_tampered_tarball_refused_before_anything(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    good = releases[("node_exporter", "1.5.0")]
    tampered = tmp_path / "tampered" / good.name
    tampered.parent.mkdir()
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    art_dir = tampered.parent
    lock = build_lock(
        tmp_path / "lock.json", {"node_exporter": (node_runtime(port), "exporters", [hop(server, good, None, "1.5.0")])}
    )
    (root / "etc").mkdir()
    (root / "etc/keep.conf").write_text("unchanged\n")
    before = tree_snapshot(root / "etc")
    report, rec = _apply(lock, root, artifacts_dir=art_dir)
    assert report.exit_code == 1
    (result,) = report.results
    assert result.reason == "ChecksumMismatch"
    assert fetch_sha(good) in result.detail["error"] and fetch_sha(tampered) in result.detail["error"]
    assert not (root / "opt").exists() and not (root / "usr").exists()
    assert tree_snapshot(root / "etc") == before
    assert list((root / "var/cache/obsplan/downloads").iterdir()) == []


def fetch_sha(path: Path) -> str:
    from .fetch_debs import sha256_file

    return sha256_file(path)


def test_dry_run_leaves_tree_identical(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    lock = _node_lock(server, releases, tmp_path / "lock.json", port, last="1.5.0")
    report, _ = _apply(lock, root)
    assert report.exit_code == 0
    lock2 = _node_lock(server, releases, tmp_path / "lock2.json", port)

    # the running exporter and supervisord append to their own logs; everything obsplan owns must be identical
    def snap() -> dict:
        return {k: v for k, v in tree_snapshot(root).items() if not k.endswith(".log")}

    before = snap()
    report, rec = _apply(lock2, root, dry_run=True)
    assert report.exit_code == 0
    assert [r.status for r in report.results] == ["up_to_date", "would_run"]
    assert rec.find("would_fetch") and rec.find("would_switch") and rec.find("would_restart")
    assert snap() == before
    assert _served(port) == "1.5.0"


def test_fast_mode_parallel_partial_failure(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    """Two independent components of one phase run in doit's thread runner; one fails, the other continues."""
    good_port, bad_port = free_port(), free_port()
    good_rt = node_runtime(good_port).model_copy(
        update={"binaries": {"ne_good": "*/node_exporter"}, "service_binary": "ne_good"}
    )
    bad_rt = node_runtime(bad_port).model_copy(
        update={"binaries": {"ne_bad": "*/node_exporter"}, "service_binary": "ne_bad"}
    )
    bad = _crashing_release(tmp_path, "1.9.1")
    lock = build_lock(
        tmp_path / "lock.json",
        {
            "ne_good": (good_rt, "exporters", [hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0")]),
            "ne_bad": (bad_rt, "exporters", [hop(server, bad, None, "1.9.1")]),
        },
    )
    report, rec = _apply(lock, root, mode="fast")
    status = {r.component: r.status for r in report.results}
    assert status == {"ne_good": "ok", "ne_bad": "rolled_back"}
    assert report.exit_code == 1
    assert _served(good_port) == "1.5.0"
    # a failed fresh install is removed again: no current link, no unit, no exposed binary
    assert not (root / "opt/obsplan/ne_bad/current").exists()
    assert not (root / "etc/supervisor/conf.d/ne_bad.conf").exists()
    assert not (root / "usr/local/bin/ne_bad").exists()
    report2, rec2 = _apply(lock, root, mode="fast")
    assert {r.component: r.status for r in report2.results} == {"ne_good": "up_to_date", "ne_bad": "rolled_back"}
    assert [e.component for e in rec2.find("step_started")] == ["ne_bad"]


def test_new_process_serving_wrong_version_rolls_back(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    """The new binary claims 1.9.1 on --version but serves 1.5.0: a healthy answer of the wrong version fails."""
    port = free_port()
    script = (
        b'#!/bin/sh\ncase "$1" in --version) echo "node_exporter, version 1.9.1 (branch: HEAD, revision: x)";;\n'
        b'*) here=$(dirname "$(readlink -f "$0")")\n'
        b'   exec "$here/../../1.5.0/node_exporter-1.5.0.linux-amd64/node_exporter" "$@";; esac\n'
    )
    top = "node_exporter-1.9.1.linux-amd64"
    liar = tmp_path / "liar" / f"{top}.tar.gz"
    liar.parent.mkdir()
    with tarfile.open(liar, "w:gz") as tar:
        info = tarfile.TarInfo(f"{top}/node_exporter")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    lock = _node_lock(server, releases, tmp_path / "lock.json", port, last="1.9.1", bad=liar)
    report, rec = _apply(lock, root)
    assert [r.status for r in report.results] == ["ok", "rolled_back"]
    assert report.results[1].reason == "wrong_version_served"
    assert _served(port) == "1.5.0"
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == "1.5.0"
