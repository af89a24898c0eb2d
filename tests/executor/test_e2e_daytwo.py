"""Day two on real node_exporter binaries (Debian 1.5.0 and 1.9.0) under a real supervisord: adoption of a
hand-installed exporter, drift and on_manual_change, rollback --last-run, scraping from another network
namespace."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import obsplan.executor.apply.engine as engine
import obsplan.executor.recovery.rollback as rollbacks
import pytest
from obsplan.executor import queries
from obsplan.executor.host.facts_collect import collect
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.reporters import RecordingReporter
from obsplan.executor.services.supervisord import SupervisordManager

from obsplan.lock.lockfile import FromRefusal, HostPolicy, load_lock
from obsplan.safeio.fsio import write_atomic

from .conftest import Server, build_lock, free_port, hop, node_runtime

pytestmark = pytest.mark.e2e

OPTS = {"mode": "fast", "health_timeout": 30.0, "service_manager": "supervisord"}


def _apply(lock: Path, root: Path) -> tuple[engine.ApplyReport, RecordingReporter]:
    rec = RecordingReporter()
    return engine.apply(lock, engine.ApplyOptions(root=root, **OPTS), rec), rec  # type: ignore[arg-type]


def _served(port: int, host: str = "127.0.0.1") -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, "node_exporter_build_info", host=host)


def _wait_served(port: int, version: str) -> None:
    deadline = time.monotonic() + 30
    while _served(port) != version:
        assert time.monotonic() < deadline, f"node_exporter {version} never served on {port}"
        time.sleep(0.2)


def _binary(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/node_exporter"))
        data = tar.extractfile(member)
        assert data is not None
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data.read())
    dest.chmod(0o755)
    return dest


def _lock(
    server: Server, releases: dict, path: Path, port: int, frm: str | None, to: str, policy: HostPolicy | None = None
) -> Path:
    build_lock(
        path,
        {"node_exporter": (node_runtime(port), "exporters", [hop(server, releases[("node_exporter", to)], frm, to)])},
    )
    lock = load_lock(path)  # as the compiler writes it: the host may start anywhere but above the target
    [step] = lock.plan.steps
    refuse = [FromRefusal(rule="no_downgrade", versions=f">{to}", reason="not pinned")]
    plan = lock.plan.model_copy(update={"steps": [step.model_copy(update={"refuse_from": refuse})]})
    lock = lock.model_copy(update={"plan": plan, "host_policy": policy or HostPolicy()}).sealed()
    write_atomic(path, lock.to_json())
    return path


def _supervised_pid(root: Path) -> int | None:
    return SupervisordManager(Layout(root)).status("node_exporter").pid


@contextlib.contextmanager
def _hand_started(binary: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [str(binary), f"--web.listen-address=127.0.0.1:{port}"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_adopt_hand_installed_upgrade_then_roll_back_under_obsplan(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    port = free_port()
    binary = _binary(releases[("node_exporter", "1.5.0")], root / "usr/local/bin/node_exporter")
    original = binary.read_bytes()
    unit = root / "etc/systemd/system/node_exporter.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(f"[Service]\nExecStart={binary} --web.listen-address=127.0.0.1:{port}\n")
    # a plan made without host facts: it assumes nothing installed; the matrix allows starting from 1.5.0
    lock = _lock(server, releases, tmp_path / "l.lock", port, None, "1.9.0")
    with _hand_started(binary, port) as hand:
        _wait_served(port, "1.5.0")
        facts = collect(root, load_lock(lock)).components["node_exporter"]
        assert (facts.installed, facts.linked, facts.served, facts.managed) == ("1.5.0", None, "1.5.0", False)

        report, rec = _apply(lock, root)
        assert report.exit_code == 0, report.to_dict()
        assert hand.wait(timeout=20) is not None  # the process started by hand was stopped (after the backup)
    [adopted] = rec.find("adopted", "node_exporter")
    assert (
        adopted.metadata["version"] == "1.5.0"
        and "etc/systemd/system/node_exporter.service" in adopted.metadata["files"]
    )
    assert hand.pid in rec.find("took_over", "node_exporter")[0].metadata["stopped_pids"]
    assert rec.find("host_drift", "node_exporter")
    assert _served(port) == "1.9.0" and _supervised_pid(root) is not None
    assert [r["kind"] for r in queries.history(root)][::-1] == ["host_drift", "upgrade"]
    points = rollbacks.rollback_list(root, "node_exporter")["points"]
    assert [(p["label"], p["from_version"], p["status"]) for p in points] == [("adopted", "1.5.0", "available")]
    backup = Path(points[0]["backup_dir"])
    kept = root / "opt/obsplan/node_exporter/1.5.0/adopted/node_exporter"  # where obsplan can run it again
    assert (backup / "binary__node_exporter").read_bytes() == kept.read_bytes() == original
    assert (backup / "etc__systemd__system__node_exporter.service").read_text() == unit.read_text()

    result = rollbacks.rollback(root, "node_exporter", None, RecordingReporter(), "supervisord", "fast", 30.0)
    assert result.status == "ok", result.to_dict()
    assert _served(port) == "1.5.0"  # the adopted version, now run by obsplan's service manager
    pid = _supervised_pid(root)
    assert pid is not None and os.readlink(f"/proc/{pid}/exe").startswith(str(root / "opt/obsplan/node_exporter/1.5.0"))
    status = {r["component"]: r for r in queries.status(root, services_kind="supervisord")}["node_exporter"]
    assert status["served_version"] == "1.5.0" and status["drift"] is None


def test_drift_skip_then_reinstall_then_rollback_last_run(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    port = free_port()
    first = _lock(server, releases, tmp_path / "first.lock", port, None, "1.5.0")
    assert _apply(first, root)[0].exit_code == 0
    # by hand: a build reporting 1.8.2 (off the lock's path: a version on it would be accepted, see
    # test_e2e_operator_sequences) copied over obsplan's link
    link = root / "usr/local/bin/node_exporter"
    link.unlink()
    real = _binary(releases[("node_exporter", "1.9.0")], root / "usr/local/lib/node_exporter-hand")
    link.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && echo "node_exporter, version 1.8.2 (branch: HEAD, revision: 0)" '
        f'&& exit 0\nexec {real} "$@"\n'
    )
    link.chmod(0o755)
    status = {r["component"]: r for r in queries.status(root, services_kind="supervisord")}["node_exporter"]
    assert status["health"] == "drift" and "replaced by hand (reports 1.8.2" in status["drift"]
    cli_status = subprocess.run(
        [sys.executable, "-m", "obsplan", "status", "--root", str(root), "--service-manager", "supervisord"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "drift: node_exporter:" in cli_status.stdout, cli_status.stdout

    second = _lock(server, releases, tmp_path / "second.lock", port, "1.5.0", "1.9.0")
    report, rec = _apply(second, root)  # default on_manual_change: skip, with a warning, not a failure
    assert report.exit_code == 0
    assert (report.results[0].status, report.results[0].reason) == ("skipped", "manual_change")
    assert any(e.metadata.get("code") == "manual_change" for e in rec.find("warning", "node_exporter"))
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == "1.5.0"

    third = _lock(
        server, releases, tmp_path / "third.lock", port, "1.5.0", "1.9.0", HostPolicy(on_manual_change="reinstall")
    )
    report, rec = _apply(third, root)
    assert report.exit_code == 0, report.to_dict()
    assert rec.find("manual_binary_kept", "node_exporter") and _served(port) == "1.9.0"
    assert link.is_symlink()
    assert {r["component"]: r for r in queries.status(root, services_kind="supervisord")}["node_exporter"][
        "drift"
    ] is None

    # seed 003's whole-run rollback: what the last apply changed goes back, verified serving
    cmd = [
        sys.executable,
        "-m",
        "obsplan",
        "rollback",
        "--last-run",
        "--root",
        str(root),
        "--service-manager",
        "supervisord",
        "--mode",
        "fast",
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["event"] == "last_run_rollback"
    assert [(r["component"], r["status"]) for r in summary["metadata"]["results"]] == [("node_exporter", "ok")]
    assert _served(port) == "1.5.0"
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # again: already back, still exit 0
    assert done.returncode == 0 and '"already_back"' in done.stdout.splitlines()[-1]


def _free_subnet() -> ipaddress.IPv4Network:
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    used += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if f"{str(net.network_address).rsplit('.', 1)[0]}." not in used:
            return net
    pytest.skip("no free private /24 found")


@contextlib.contextmanager
def _namespace() -> Iterator[tuple[str, str, str]]:
    """A network namespace joined to the host by a veth pair: (namespace, host address, namespace address)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    net = _free_subnet()
    host_ip, ns_ip = str(net.network_address + 1), str(net.network_address + 2)
    tag = f"{os.getpid() % 100000}"
    ns, veth_host, veth_ns = f"obdt{tag}", f"obdh{tag}", f"obdn{tag}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        ip("netns", "add", ns)
        ip("link", "add", veth_host, "type", "veth", "peer", "name", veth_ns)
        ip("link", "set", veth_ns, "netns", ns)
        ip("addr", "add", f"{host_ip}/24", "dev", veth_host)
        ip("link", "set", veth_host, "up")
        ip("netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", veth_ns)
        ip("netns", "exec", ns, "ip", "link", "set", veth_ns, "up")
        ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, host_ip, ns_ip
    finally:
        subprocess.run(["ip", "link", "del", veth_host], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def test_exporter_installed_by_obsplan_answers_from_another_namespace(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    port = free_port()
    lock = _lock(server, releases, tmp_path / "l.lock", port, None, "1.9.0")
    with _namespace() as (ns, host_ip, _):
        assert _apply(lock, root)[0].exit_code == 0
        scrape = subprocess.run(
            ["ip", "netns", "exec", ns, "curl", "-sf", "--max-time", "10", f"http://{host_ip}:{port}/metrics"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert scrape.returncode == 0, scrape.stderr
        assert "node_exporter_build_info{" in scrape.stdout and 'version="1.9.0"' in scrape.stdout
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def test_adopt_a_process_serving_from_outside_any_known_path(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    port = free_port()
    binary = _binary(releases[("node_exporter", "1.5.0")], tmp_path / "elsewhere" / "node_exporter")
    lock = _lock(server, releases, tmp_path / "l.lock", port, None, "1.9.0")
    with _hand_started(binary, port) as hand:
        _wait_served(port, "1.5.0")
        report, rec = _apply(lock, root)
        assert report.exit_code == 0, report.to_dict()
        assert hand.wait(timeout=20) is not None
    [adopted] = rec.find("adopted", "node_exporter")
    assert adopted.metadata["binary"] == str(binary) and adopted.metadata["version"] == "1.5.0"
    assert _served(port) == "1.9.0"
    assert binary.is_file()  # the operator's file is left where it was; obsplan runs its own copy
