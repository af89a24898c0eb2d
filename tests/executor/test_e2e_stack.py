"""End-to-end: the stack's real breaking changes on real Debian binaries, in one lock, under supervisord.

alertmanager 0.25.0 → 0.28.1 (core phase; cluster and storage flags), mysqld_exporter 0.14.0 → 0.17.2
(credentials move from DATA_SOURCE_NAME to a my.cnf), nginx_exporter 0.11.0 → 1.4.1 (single-dash flags and
`nginxexporter_build_info` → double-dash flags and `nginx_exporter_build_info`), in the exporters phase.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.reporters import RecordingReporter
from obsplan.executor.services.managers import render_context
from obsplan.executor.services.supervisord import SupervisordManager
from obsplan.executor.services.systemd import SystemdManager

from . import fetch_debs
from .conftest import Server, build_lock, catalog_runtime, free_port, hop
from .test_e2e_node_exporter import _cli

pytestmark = pytest.mark.e2e

SECRET = "Zq7-obsplan-never-logged-4c1"
TEMPLATE = Path("/") / fetch_debs.ALERTMANAGER_TEMPLATE
STUB_STATUS = b"Active connections: 1 \nserver accepts handled requests\n 7 7 9 \nReading: 0 Writing: 1 Waiting: 0 \n"
VERSIONS = {
    "alertmanager": ("0.25.0", "0.28.1"),
    "mysqld_exporter": ("0.14.0", "0.17.2"),
    "nginx_exporter": ("0.11.0", "1.4.1"),
}
METRICS = {
    "alertmanager": {"0.25.0": "alertmanager_build_info", "0.28.1": "alertmanager_build_info"},
    "mysqld_exporter": {"0.14.0": "mysqld_exporter_build_info", "0.17.2": "mysqld_exporter_build_info"},
    "nginx_exporter": {"0.11.0": "nginxexporter_build_info", "1.4.1": "nginx_exporter_build_info"},
}


@pytest.fixture(scope="module")
def alertmanager_template(releases: dict) -> Iterator[Path]:
    """Debian's alertmanager reads its templates (default.tmpl, and email.tmpl for 0.25) from /usr/share,
    where upstream builds embed them: supplied from the trixie package, removed again afterwards."""
    source = fetch_debs.extracted_file("trixie", "prometheus-alertmanager", fetch_debs.ALERTMANAGER_TEMPLATE).parent
    created_dir = next((d for d in reversed(TEMPLATE.parents) if not d.exists()), None)
    added = []
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    for tmpl in sorted(source.glob("*.tmpl")):
        if not (TEMPLATE.parent / tmpl.name).exists():
            shutil.copyfile(tmpl, TEMPLATE.parent / tmpl.name)
            added.append(TEMPLATE.parent / tmpl.name)
    try:
        yield TEMPLATE
    finally:
        for path in added:
            path.unlink(missing_ok=True)
        if created_dir is not None:
            shutil.rmtree(created_dir, ignore_errors=True)


class _StubStatus(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/stub_status" else 404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(STUB_STATUS if self.path == "/stub_status" else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_status() -> Iterator[str]:
    """A minimal nginx `stub_status` responder (nginx exporter 0.11 exits 1 when it cannot fetch one)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubStatus)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/stub_status"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _served(port: int, metric: str) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, metric)


def _metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text


def _runtimes(ports: dict[str, int], stub: str) -> dict[str, object]:
    cluster = {"listen_address": f"127.0.0.1:{ports['cluster']}"}
    mysql = {"address": "127.0.0.1:3306", "user": "exporter", "password_file": "/etc/obsplan/mysql.pw"}
    return {
        "alertmanager": catalog_runtime(
            "alertmanager", ports["alertmanager"], cluster=cluster, storage={"retention": "24h"}
        ),
        "mysqld_exporter": catalog_runtime("mysqld_exporter", ports["mysqld_exporter"], mysql=mysql),
        "nginx_exporter": catalog_runtime("nginx_exporter", ports["nginx_exporter"], scrape_uri=stub),
    }


def _locks(server: Server, releases: dict, tmp_path: Path, runtimes: dict) -> tuple[Path, Path]:
    first, both = {}, {}
    for name, (old, new) in VERSIONS.items():
        phase = "core" if name == "alertmanager" else "exporters"
        h1 = hop(server, releases[(name, old)], None, old)
        h2 = hop(server, releases[(name, new)], old, new)
        first[name] = (runtimes[name], phase, [h1])
        both[name] = (runtimes[name], phase, [h1, h2])
    phases = ["exporters", "core"]
    return build_lock(tmp_path / "first.lock", first, phases), build_lock(tmp_path / "stack.lock", both, phases)


def _program(root: Path, name: str) -> str:
    return (root / "etc/supervisor/conf.d" / f"{name}.conf").read_text()


def _pid_environ(root: Path, name: str) -> str:
    pid = SupervisordManager(Layout(root)).status(name).pid
    assert pid is not None
    return Path(f"/proc/{pid}/environ").read_text()


def _assert_serving(ports: dict[str, int], which: int) -> None:
    for name, versions in VERSIONS.items():
        version = versions[which]
        assert _served(ports[name], METRICS[name][version]) == version, name


def _secret_holders(root: Path, tmp_path: Path) -> dict[str, int]:
    """Every file under the root and the test's directory (locks) whose bytes hold the secret, with its mode."""
    found = {}
    for base in (root, tmp_path):
        for dirpath, _, files in os.walk(base):
            for f in files:
                p = Path(dirpath) / f
                if p.is_file() and not p.is_symlink() and SECRET.encode() in p.read_bytes():
                    found[str(p.relative_to(base))] = p.stat().st_mode & 0o777
    return found


def test_stack_breaking_changes_on_real_binaries(
    server: Server, releases: dict, root: Path, tmp_path: Path, stub_status: str, alertmanager_template: Path
) -> None:
    ports = {n: free_port() for n in ("alertmanager", "cluster", "mysqld_exporter", "nginx_exporter")}
    first, stack = _locks(server, releases, tmp_path, _runtimes(ports, stub_status))
    pw = root / "etc/obsplan/mysql.pw"
    pw.parent.mkdir(parents=True)
    pw.write_text(SECRET + "\n")
    pw.chmod(0o600)
    opts = engine.ApplyOptions(root=root, mode="fast", health_timeout=60.0)

    report = engine.apply(first, opts, rec0 := RecordingReporter())
    assert report.exit_code == 0, report.to_dict()
    _assert_serving(ports, 0)
    # versions read from the binaries: Debian's suffixes dropped, nginx 0.x's own --version format understood
    read = {e.component: e.metadata["binary_version"] for e in rec0.find("extracted")}
    assert read == {"alertmanager": "0.25.0", "mysqld_exporter": "0.14.0", "nginx_exporter": "0.11.0"}
    env = _pid_environ(root, "mysqld_exporter")
    assert f"DATA_SOURCE_NAME=exporter:{SECRET}@tcp(127.0.0.1:3306)/" in env
    assert not (root / "etc/mysqld_exporter/my.cnf").exists()
    assert f"-nginx.scrape-uri={stub_status}" in _program(root, "nginx_exporter")

    t0 = time.monotonic()
    report = engine.apply(stack, opts, rec := RecordingReporter())
    wall = time.monotonic() - t0
    assert report.exit_code == 0, report.to_dict()
    ok = sorted(r.step_id for r in report.results if r.status == "ok")
    assert ok == ["alertmanager-0.28.1", "mysqld_exporter-0.17.2", "nginx_exporter-1.4.1"]
    _assert_serving(ports, 1)
    print(f"\ncombined apply (alertmanager, mysqld_exporter, nginx_exporter upgrades): {wall:.1f}s")

    # mysqld_exporter: credentials moved from the environment to a my.cnf (0600, the service user's)
    my_cnf = root / "etc/mysqld_exporter/my.cnf"
    assert f"password={SECRET}\n" in my_cnf.read_text() and my_cnf.stat().st_mode & 0o777 == 0o600
    assert my_cnf.stat().st_uid == os.getuid()
    assert "DATA_SOURCE_NAME" not in _pid_environ(root, "mysqld_exporter")
    assert f"--config.my-cnf={my_cnf}" in _program(root, "mysqld_exporter")
    assert "mysql_up 0" in _metrics(ports["mysqld_exporter"])  # credentials read; no MySQL runs here
    # nginx_exporter: double-dash flags from 1.0
    assert f"--nginx.scrape-uri={stub_status}" in _program(root, "nginx_exporter")
    # alertmanager: cluster on the given address, retention, and its data kept
    am = _program(root, "alertmanager")
    assert f"--cluster.listen-address=127.0.0.1:{ports['cluster']}" in am and "--data.retention=24h" in am
    assert "alertmanager_cluster_enabled 1" in _metrics(ports["alertmanager"])
    assert (root / "var/lib/alertmanager").is_dir()
    assert {e.component for e in rec.find("verified")} == set(VERSIONS)

    # a second apply does nothing
    again = engine.apply(stack, opts, RecordingReporter())
    assert {r.status for r in again.results} == {"up_to_date"}, again.to_dict()

    # rollback: mysqld_exporter back to 0.14.0 with DATA_SOURCE_NAME restored, serving
    rb = _cli("rollback", "mysqld_exporter", "--root", str(root), "--json", "--health-timeout", "60")
    assert rb.returncode == 0, rb.stdout + rb.stderr
    assert _served(ports["mysqld_exporter"], "mysqld_exporter_build_info") == "0.14.0"
    assert f"DATA_SOURCE_NAME=exporter:{SECRET}@tcp(127.0.0.1:3306)/" in _pid_environ(root, "mysqld_exporter")
    assert os.readlink(root / "opt/obsplan/mysqld_exporter/current") == "0.14.0"

    # the secret is only in the files meant to hold it, all 0600: not in a lock, report, history or log
    assert SECRET not in json.dumps(report.to_dict()) + json.dumps([e.metadata for e in rec.events], default=str)
    assert SECRET not in rb.stdout + rb.stderr
    holders = _secret_holders(root, tmp_path)
    allowed = (
        "etc/obsplan/mysql.pw",
        "etc/mysqld_exporter/my.cnf",
        "etc/obsplan/env/mysqld_exporter.env",
        "etc/supervisor/conf.d/mysqld_exporter.conf",
        "var/lib/obsplan/backups/",
    )
    assert holders and all(path.startswith(allowed) for path in holders), holders
    assert set(holders.values()) == {0o600}, holders

    _verify_units(root, stack)


def _verify_units(root: Path, lock_path: Path) -> None:
    """The systemd units rendered from the same definitions pass `systemd-analyze verify`."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    from obsplan.lock.lockfile import load_lock

    lock, layout = load_lock(lock_path), Layout(root)
    units = root / "units"
    units.mkdir()
    for step in lock.plan.steps:
        ctx = render_context(step.component, lock.components[step.component].runtime, step.to_version, layout)
        unit = units / f"{step.component}.service"
        unit.write_text(SystemdManager(layout).render(ctx))
        proc = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
        )
        problems = [line for line in proc.stderr.splitlines() if unit.name in line]
        assert proc.returncode == 0 or not problems, (step.id, proc.stderr)
        if step.component == "mysqld_exporter" and step.to_version == "0.14.0":
            assert f"EnvironmentFile={root}/etc/obsplan/env/mysqld_exporter.env" in unit.read_text()
            assert SECRET not in unit.read_text()
        with contextlib.suppress(FileNotFoundError):
            unit.unlink()
