"""Fixtures for the executor tests: real Debian binaries repacked as release tarballs, a local HTTP server,
temporary roots (each with its own supervisord, shut down at the end) and lock builders."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from obsplan.executor.host.probes import host_platform

from obsplan.lock.lockfile import Artifact, ComponentLock, Runtime, Step
from tests.lockbuild import component_lock, hop_step, write_sealed_lock
from tests.processes import gone, kill_tree
from tests.static_server import start_static_server

from . import fetch_debs

PLATFORM = host_platform()


@pytest.fixture(scope="session")
def releases() -> dict[tuple[str, str], Path]:
    """{(name, version): tarball} built from real Debian packages (cached: fetch_debs.DEFAULT_CACHE)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb to fetch real binaries")
    try:
        return fetch_debs.build_releases()
    except RuntimeError as exc:  # no network and no cache
        pytest.skip(f"cannot fetch the Debian binaries: {exc}")


@dataclass
class Server:
    url: str
    directory: Path

    def add(self, path: Path) -> str:
        """Publish a file; returns its URL."""
        shutil.copyfile(path, self.directory / path.name)
        return f"{self.url}/{path.name}"


@pytest.fixture(scope="session")
def server(releases: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("www")
    for path in releases.values():
        os.link(path, directory / path.name) if _same_fs(path, directory) else shutil.copyfile(
            path, directory / path.name
        )
    static = start_static_server(directory)
    try:
        yield Server(static.url, directory)
    finally:
        static.stop()


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def shutdown_supervisord(root: Path) -> None:
    """The root's supervisord and every program it runs killed (tests/processes.py: no graceful 2 s stop)."""
    pidfile = root / "run" / "supervisord.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(root).encode() in cmdline and not gone(pid):  # this root's supervisord, not a recycled pid
        kill_tree(pid)


@pytest.fixture
def root() -> Iterator[Path]:
    """A short temporary --root (unix socket paths are limited to ~100 bytes); supervisord stopped at the end."""
    path = Path(tempfile.mkdtemp(prefix="ob", dir="/tmp"))
    try:
        yield path
    finally:
        shutdown_supervisord(path)
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def catalog_runtime(name: str, port: int, **settings: Any) -> Runtime:
    """The runtime the compiler would lock for a built-in component (policies/components.yaml and
    policies/services.yaml), on `port`, with versions.yaml-style `runtime:` settings."""
    from obsplan.compiler.config.catalog import builtin_definitions, service_for

    base = dict(builtin_definitions()[name]["runtime"])  # type: ignore[call-overload]
    return Runtime(**{**base, "port": port, "service": service_for(name), **settings})


def node_runtime(port: int) -> Runtime:
    return catalog_runtime("node_exporter", port)


def prometheus_runtime(port: int) -> Runtime:
    return catalog_runtime("prometheus", port)


@dataclass
class Hop:
    from_version: str | None
    to_version: str
    url: str
    sha256: str
    floor: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


def hop(
    server: Server,
    tarball: Path,
    from_version: str | None,
    to_version: str,
    floor: str | None = None,
    sha256: str | None = None,
) -> Hop:
    published = server.directory / tarball.name
    same = published.exists() and fetch_debs.sha256_file(published) == fetch_debs.sha256_file(tarball)
    url = f"{server.url}/{tarball.name}" if same else server.add(tarball)
    return Hop(from_version, to_version, url, sha256 or fetch_debs.sha256_file(tarball), floor)


def build_lock(
    path: Path, components: dict[str, tuple[Runtime, str, list[Hop]]], phases: list[str] | None = None
) -> Path:
    """Write a sealed lock: components maps name → (runtime, phase, hops in order)."""
    steps: list[Step] = []
    comps: dict[str, ComponentLock] = {}
    for name, (runtime, phase, hops) in components.items():
        prev: str | None = None
        last_art = None
        for h in hops:
            art = Artifact(url=h.url, filename=h.filename, format="tar.gz", sha256=h.sha256)
            sid = f"{name}-{h.to_version}"
            steps.append(
                hop_step(sid, name, h.from_version, h.to_version, phase, prev, {PLATFORM: art}, rollback_floor=h.floor)
            )
            prev, last_art = sid, art
        assert last_art is not None
        comps[name] = component_lock(hops[0].from_version, hops[-1].to_version, {PLATFORM: last_art}, runtime, None)
    all_phases = phases or sorted({p for _, p, _ in components.values()})
    return write_sealed_lock(path, comps, steps, all_phases, platforms=[PLATFORM], environment="test", inputs={})


def tree_snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under root with its type, mode and content (bytes hash / link target)."""
    import hashlib

    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", st.st_mode, os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode, "")
            elif p.is_socket():
                out[rel] = ("socket", st.st_mode, "")
            else:
                out[rel] = ("file", st.st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
    return out
