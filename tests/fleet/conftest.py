"""Fixtures for the fleet tests: four hosts (network namespaces with their own sshd and root directory, see
harness.py), locks and bundles of real node_exporter 1.5.0 / 1.9.0, a real Prometheus scraping the hosts, and
a runner for `obsplan rollout` as a subprocess (the way users run it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.executor.conftest import Server, build_lock, free_port, hop, node_runtime, releases, server  # noqa: F401
from tests.executor.test_e2e_node_exporter import _crashing_release
from tests.processes import stop

from .harness import Fleet, netns_supported, start_fleet

OBSPLAN = str(Path(sys.executable).parent / "obsplan")
NODE_PORT = 9100  # every host has its own network namespace: the same port on each is no clash


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    if os.geteuid() != 0 or not netns_supported():
        pytest.skip("network namespaces need root (CAP_SYS_ADMIN) and iproute2")
    try:
        f = start_fleet(4, quiet_rc=True)  # each SSH command skips this machine's ~/.bashrc (pyenv init)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        yield f
    finally:
        f.close()


def _bundle(lock: Path) -> Path:
    out = lock.with_suffix(".tar")
    proc = subprocess.run([OBSPLAN, "bundle", str(lock), "-o", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return out


@dataclass
class Release:
    lock: Path
    bundle: Path


@pytest.fixture(scope="session")
def node_releases(server: Server, releases: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:  # noqa: F811
    """'1.5.0' (install), '1.9.0' (1.5.0 → 1.9.0), '1.9.1-crashing' (a 1.9.1 that exits at start): locks and
    their bundles."""
    tmp_path = tmp_path_factory.mktemp("releases")
    h15 = hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0")
    h19 = hop(server, releases[("node_exporter", "1.9.0")], "1.5.0", "1.9.0")
    out = {}
    bad = hop(server, _crashing_release(tmp_path, "1.9.1"), "1.5.0", "1.9.1")
    for name, hops in (("1.5.0", [h15]), ("1.9.0", [h15, h19]), ("1.9.1-crashing", [h15, bad])):
        lock = build_lock(
            tmp_path / f"node-{name}.lock", {"node_exporter": (node_runtime(NODE_PORT), "exporters", hops)}
        )
        out[name] = Release(lock, _bundle(lock))
    return out


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[dict]:
        with httpx.Client(trust_env=False, timeout=5) as c:
            return c.get(f"{self.url}/api/v1/query", params={"query": expr}).json()["data"]["result"]

    def wait_up(self, count: int, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len([r for r in self.query("up == 1")]) >= count:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"fewer than {count} targets up after {timeout}s: {self.query('up')}")


@pytest.fixture
def prometheus(fleet: Fleet, releases: dict, tmp_path: Path) -> Iterator[Prometheus]:  # noqa: F811
    """Debian's prometheus 2.42.0 in the root namespace scraping every host's node_exporter each second."""
    home = tmp_path / "prom"
    with tarfile.open(releases[("prometheus", "2.42.0")]) as tar:
        tar.extractall(home, filter="data")
    binary = next(home.glob("*/prometheus"))
    targets = [f"{h.address}:{NODE_PORT}" for h in fleet.hosts]
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": targets}]}],
    }
    (home / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    with open(home / "log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(binary),
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", trust_env=False, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (home / "log").read_text()[-2000:]
            time.sleep(0.05)
        yield Prometheus(url, proc)
    finally:
        stop(proc)


ONE_BATCH = ["--canary", "0", "--batches", "100%", "--mode", "fast"]  # every host at once, fast health window


def release_args(lock: Path, inventory: Path, bundle: Path) -> list[str]:
    """`LOCK --inventory INV --bundle BUNDLE`: what every rollout here starts with."""
    return [str(lock), "--inventory", str(inventory), "--bundle", str(bundle)]


def rollout(*args: str, state: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OBSPLAN, "rollout", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def events(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def served(address: str) -> str | None:
    """The version a host's node_exporter serves, read from the root namespace over the veth."""
    try:
        text = httpx.get(f"http://{address}:{NODE_PORT}/metrics", trust_env=False, timeout=3).text
    except httpx.HTTPError:
        return None
    m = re.search(r'^node_exporter_build_info\{[^}]*[{,]version="([^"]+)"', text, re.M)
    return m.group(1) if m else None


def install_base(fleet: Fleet, rel: Release, tmp_path: Path) -> None:
    """Every host at node_exporter 1.5.0, installed by a one-batch rollout (fresh hosts: their component named)."""
    inv = fleet.inventory(tmp_path / "base-inventory.yaml", OBSPLAN, components=["node_exporter"])
    proc = rollout(*release_args(rel.lock, inv, rel.bundle), *ONE_BATCH, "--json", state=tmp_path / "base-state")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(served(h.address) == "1.5.0" for h in fleet.hosts)
