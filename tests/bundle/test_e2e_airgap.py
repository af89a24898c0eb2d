"""End to end: lock → bundle → upstream gone → apply from the bundle with no network → services healthy at the
locked versions (real Debian node_exporter and prometheus binaries under a real supervisord).

"No network" is proven twice:
  * in-process: the apply gets, through its `client` parameter, an httpx client whose transport raises on any
    request that is not a health/metrics probe of the services being installed, and a `sys.addaudithook`
    hook records every socket connect and name lookup the process makes during the apply;
  * with the real CLI inside `unshare -n` (a network namespace with only loopback), where even the upstream
    server still running on the host's 127.0.0.1 is unreachable (supervisord and the services run in there too).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.reporters import RecordingReporter

from tests.executor.conftest import free_port, node_runtime, prometheus_runtime

from .conftest import PLATFORM, Hop, Upstream, cli, host_snapshot, make_lock

pytestmark = pytest.mark.e2e

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class NetworkUsed(AssertionError):
    pass


class GuardTransport(httpx.BaseTransport):
    """Lets through only requests to the services' own loopback ports; anything else raises, loudly."""

    def __init__(self, allowed_ports: set[int]) -> None:
        self.allowed = allowed_ports
        self.inner = httpx.HTTPTransport()
        self.refused: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in LOOPBACK and request.url.port in self.allowed:
            return self.inner.handle_request(request)
        self.refused.append(str(request.url))
        raise NetworkUsed(f"NETWORK USED during an air-gapped apply: {request.method} {request.url}")

    def close(self) -> None:
        self.inner.close()


_WATCHES: list[list[tuple[Any, ...]]] = []  # audit hooks cannot be removed: one hook, switched on per test


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHES:
        return
    if event == "socket.connect":
        sock, address = args
        _WATCHES[-1].append(("connect", sock.family, address))
    elif event == "socket.getaddrinfo":
        _WATCHES[-1].append(("getaddrinfo", args[0], args[1]))


_HOOKED: list[bool] = []


@contextmanager
def watch_sockets() -> Iterator[list[tuple[Any, ...]]]:
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED.append(True)
    seen: list[tuple[Any, ...]] = []
    _WATCHES.append(seen)
    try:
        yield seen
    finally:
        _WATCHES.remove(seen)


def _outside(seen: list[tuple[Any, ...]], ports: set[int]) -> list[tuple[Any, ...]]:
    """Socket activity that is neither a unix socket (supervisord) nor a loopback probe of a service port."""
    bad = []
    for rec in seen:
        if rec[0] == "connect":
            _, family, address = rec
            if family == socket.AF_UNIX:
                continue
            if isinstance(address, tuple) and address[0] in LOOPBACK and address[1] in ports:
                continue
        elif rec[1] in LOOPBACK and rec[2] in ports:
            continue
        bad.append(rec)
    return bad


def _served(port: int, metric: str) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, metric)


def test_bundle_then_apply_without_network(upstream: Upstream, releases: dict, root: Path, tmp_path: Path) -> None:
    nport, pport = free_port(), free_port()
    ne15, ne19 = releases[("node_exporter", "1.5.0")], releases[("node_exporter", "1.9.0")]
    # the host already runs the plan's intermediate version (installed the connected way, earlier)
    first = make_lock(
        tmp_path / "first.lock",
        upstream,
        {"node_exporter": (node_runtime(nport), "exporters", [Hop(None, "1.5.0", ne15)])},
    )
    opts = {"root": root, "mode": "fast", "health_timeout": 60.0}
    assert engine.apply(first, engine.ApplyOptions(**opts), RecordingReporter()).exit_code == 0  # type: ignore[arg-type]
    assert _served(nport, "node_exporter_build_info") == "1.5.0"

    lock = make_lock(
        tmp_path / "prod.lock",
        upstream,
        {
            "node_exporter": (
                node_runtime(nport),
                "exporters",
                [Hop(None, "1.5.0", ne15), Hop("1.5.0", "1.9.0", ne19)],
            ),
            "prometheus": (
                prometheus_runtime(pport),
                "core",
                [Hop(None, "2.53.3", releases[("prometheus", "2.53.3")])],
            ),
        },
    )
    out = tmp_path / "bundle"
    proc = cli("bundle", str(lock), "-o", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    upstream.stop()  # the air gap: the release server is gone

    guard = GuardTransport({nport, pport})
    rec = RecordingReporter()
    with httpx.Client(transport=guard, trust_env=False) as client, watch_sockets() as seen:
        report = engine.apply(lock, engine.ApplyOptions(bundle=out, **opts), rec, client=client)  # type: ignore[arg-type]
    assert report.exit_code == 0, report.to_dict()
    assert {r.step_id: r.status for r in report.results} == {
        "node_exporter@1.5.0": "up_to_date",  # already done on the host: skipped, not a mismatch
        "node_exporter@1.9.0": "ok",
        "prometheus@2.53.3": "ok",
    }
    assert guard.refused == []
    assert seen, "the audit hook saw no socket activity at all (health probes expected)"
    assert _outside(seen, {nport, pport}) == []
    assert _served(nport, "node_exporter_build_info") == "1.9.0"
    assert _served(pport, "prometheus_build_info") == "2.53.3"
    assert {e.metadata["file"] for e in rec.find("fetched")} == {ne19.name, releases[("prometheus", "2.53.3")].name}

    # applying again from the bundle changes nothing
    with httpx.Client(transport=guard, trust_env=False) as client:
        again = engine.apply(lock, engine.ApplyOptions(bundle=out, **opts), rec2 := RecordingReporter(), client=client)  # type: ignore[arg-type]
    assert again.exit_code == 0 and rec2.find("nothing_to_do") and guard.refused == []


def test_guard_catches_a_network_apply(upstream: Upstream, releases: dict, root: Path, tmp_path: Path) -> None:
    """The proof above is not vacuous: the same guard stops an apply that downloads, before the host changes."""
    lock = make_lock(
        tmp_path / "prod.lock",
        upstream,
        {
            "node_exporter": (
                node_runtime(free_port()),
                "exporters",
                [Hop(None, "1.5.0", releases[("node_exporter", "1.5.0")])],
            )
        },
        platforms=(PLATFORM,),
    )
    guard = GuardTransport(set())
    with httpx.Client(transport=guard, trust_env=False) as client:
        report = engine.apply(lock, engine.ApplyOptions(root=root, mode="fast"), RecordingReporter(), client=client)
    assert report.exit_code != 0 and guard.refused and guard.refused[0].startswith(upstream.url)
    assert not (root / "opt").exists()


def _unshare_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


PROBE = """
import socket, sys
for host, port in ((sys.argv[1], int(sys.argv[2])), ("1.1.1.1", 443), ("8.8.8.8", 53)):
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        print(f"unreachable {host}:{port} {exc}")
    else:
        sys.exit(f"{host}:{port} is reachable inside the namespace")
"""


@pytest.mark.skipif(not _unshare_works(), reason="unshare -n is not permitted here (needs root or user namespaces)")
def test_cli_apply_inside_network_namespace(upstream: Upstream, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    hops = [
        Hop(None, "1.5.0", releases[("node_exporter", "1.5.0")]),
        Hop("1.5.0", "1.9.0", releases[("node_exporter", "1.9.0")]),
    ]
    lock = make_lock(tmp_path / "prod.lock", upstream, {"node_exporter": (node_runtime(port), "exporters", hops)})
    tar = tmp_path / "carry" / "prod.tar"
    proc = cli("bundle", str(lock), "-o", str(tar))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the upstream server keeps running on the host's loopback: inside the namespace it must be unreachable
    up_port = int(upstream.url.rsplit(":", 1)[1])
    assert httpx.get(upstream.url + "/", trust_env=False).status_code == 200
    before = len(upstream.requests)
    py = sys.executable
    script = (
        "set -e; ip link set lo up; "
        f"{py} -c '{PROBE}' 127.0.0.1 {up_port}; "
        f"{py} -m obsplan apply {lock} --bundle {tar} --root {root} --mode fast --health-timeout 60 --json "
        f"> {tmp_path}/apply.jsonl; "
        f"{py} -m obsplan status --root {root} --json > {tmp_path}/status.json"
    )
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=600, check=False
    )
    events = (
        [json.loads(line) for line in (tmp_path / "apply.jsonl").read_text().splitlines()]
        if (tmp_path / "apply.jsonl").exists()
        else []
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr + json.dumps(events[-5:], indent=1)
    assert [line.split()[1] for line in proc.stdout.splitlines()] == [
        f"127.0.0.1:{up_port}",
        "1.1.1.1:443",
        "8.8.8.8:53",
    ], proc.stdout
    assert len(upstream.requests) == before  # not one request reached the release server
    finished = [e for e in events if e["event"] == "run_finished"]
    assert finished and finished[-1]["metadata"]["exit_code"] == 0
    (status,) = json.loads((tmp_path / "status.json").read_text())
    assert status["served_version"] == "1.9.0" and status["health"] == "serving" and status["up_to_date"]
    # outside the namespace the service is not reachable either: it really runs in there
    assert _served(port, "node_exporter_build_info") is None


def test_unverified_apply_is_refused_then_loud_and_recorded(
    upstream: Upstream, releases: dict, root: Path, tmp_path: Path
) -> None:
    port = free_port()
    hop = Hop(None, "1.5.0", releases[("node_exporter", "1.5.0")], null_sha=True)
    lock = make_lock(
        tmp_path / "prod.lock",
        upstream,
        {"node_exporter": (node_runtime(port), "exporters", [hop])},
        platforms=(PLATFORM,),
    )
    out = tmp_path / "bundle"
    assert cli("bundle", str(lock), "-o", str(out), "--allow-unverified").returncode == 0
    upstream.stop()
    (root / "etc").mkdir()
    (root / "etc/keep.conf").write_text("unchanged\n")
    before = host_snapshot(root)
    refused = cli("apply", str(lock), "--bundle", str(out), "--root", str(root))
    assert refused.returncode == 1 and "has no sha256" in refused.stdout, refused.stdout + refused.stderr
    assert host_snapshot(root) == before

    proc = cli(
        "apply",
        str(lock),
        "--bundle",
        str(out),
        "--root",
        str(root),
        "--allow-unverified",
        "--mode",
        "fast",
        "--health-timeout",
        "60",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warnings = [line for line in proc.stdout.splitlines() if " warning " in line and "unverified_artifact" in line]
    assert len(warnings) == 2 and all("UNVERIFIED" in w or "WITHOUT" in w for w in warnings)  # announced + fetched
    assert _served(port, "node_exporter_build_info") == "1.5.0"
    history = json.loads(cli("history", "--root", str(root), "--json").stdout)
    assert history[0]["success"] == 1 and "WITHOUT sha256 verification" in history[0]["unverified"]
    text = cli("history", "--root", str(root)).stdout
    assert "UNVERIFIED:" in text
