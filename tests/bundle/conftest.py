"""Fixtures for the bundle tests: an upstream release server in GitHub's URL layout (artifacts next to their
`sha256sums.txt`) that a test can stop, a second platform of small stand-in tarballs, and lock builders.

Real binaries come from the executor fixtures (`releases`: Debian packages repacked as upstream tarballs)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from obsplan.lock.lockfile import Artifact, ComponentLock, Lock, Runtime, Step
from obsplan.safeio.fsio import write_atomic
from tests.executor.conftest import PLATFORM, releases, root, tree_snapshot  # noqa: F401 - fixtures reused
from tests.lockbuild import component_lock, hop_step, write_sealed_lock
from tests.static_server import QuietHandler, StaticServer, start_static_server

OTHER = "linux-arm64" if PLATFORM == "linux-amd64" else "linux-amd64"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


@dataclass
class Upstream:
    """`<url>/<repo>/releases/download/v<version>/<file>` plus a `sha256sums.txt` per release, like promu's."""

    server: StaticServer
    requests: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.server.directory

    @property
    def url(self) -> str:
        return self.server.url

    def publish(self, repo: str, version: str, name: str, data: bytes | Path) -> tuple[str, str, str]:
        """Publish one release file; returns (url, sha256, checksum file url)."""
        rel = Path(repo) / "releases" / "download" / f"v{version}"
        d = self.directory / rel
        d.mkdir(parents=True, exist_ok=True)
        target = d / name
        if isinstance(data, Path):
            shutil.copyfile(data, target)
        else:
            target.write_bytes(data)
        sums = d / "sha256sums.txt"
        lines = [ln for ln in (sums.read_text().splitlines() if sums.exists() else []) if not ln.endswith(f"  {name}")]
        lines.append(f"{sha256_file(target)}  {name}")
        sums.write_text("\n".join(sorted(lines, key=lambda ln: ln.split()[-1])) + "\n")
        return f"{self.url}/{rel.as_posix()}/{name}", sha256_file(target), f"{self.url}/{rel.as_posix()}/sha256sums.txt"

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    directory = tmp_path_factory.mktemp("upstream")
    requests: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            requests.append(self.path)
            super().do_GET()

    up = Upstream(start_static_server(directory, Handler), requests)
    try:
        yield up
    finally:
        with contextlib.suppress(OSError):  # a test may have stopped it already
            up.stop()


def stand_in_tarball(name: str, version: str, platform: str) -> bytes:
    """A small tarball for the platform this host cannot run (only bundled, never applied here)."""
    top = f"{name}-{version}.{platform}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = f"stand-in {name} {version} for {platform}\n".encode()
        info = tarfile.TarInfo(f"{top}/{name}")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Hop:
    """One planned step: from → to, using the real release tarball `release` for this host's platform."""

    from_version: str | None
    to_version: str
    release: Path
    approval: str | None = "test: low risk"
    null_sha: bool = False  # the lock records no sha256 (upstream checksum missing at plan time)


def make_lock(
    path: Path,
    up: Upstream,
    components: dict[str, tuple[Runtime, str, list[Hop]]],
    platforms: tuple[str, ...] = (PLATFORM, OTHER),
    environment: str = "prod",
) -> Path:
    """Publish each hop's release (real tarball for this platform, stand-in for the other) and write a sealed lock."""
    steps: list[Step] = []
    comps: dict[str, ComponentLock] = {}
    for name, (runtime, phase, hops) in components.items():
        prev: str | None = None
        arts: dict[str, Artifact] = {}
        for h in hops:
            arts = {}
            for p in platforms:
                fname = h.release.name if p == PLATFORM else f"{name}-{h.to_version}.{p}.tar.gz"
                data: bytes | Path = h.release if p == PLATFORM else stand_in_tarball(name, h.to_version, p)
                url, sha, sums = up.publish(f"prometheus/{name}", h.to_version, fname, data)
                arts[p] = Artifact(
                    url=url,
                    filename=fname,
                    format="tar.gz",
                    sha256=None if h.null_sha else sha,
                    checksum_url=sums,
                    checksum_status="missing" if h.null_sha else "verified_upstream",
                )
            sid = f"{name}@{h.to_version}"
            steps.append(hop_step(sid, name, h.from_version, h.to_version, phase, prev, arts, approval=h.approval))
            prev = sid
        repo = f"prometheus/{name}"
        comps[name] = component_lock(hops[0].from_version, hops[-1].to_version, arts, runtime, repo)
    phases = sorted({p for _, p, _ in components.values()})
    return write_sealed_lock(
        path,
        comps,
        steps,
        phases,
        platforms=list(platforms),
        environment=environment,
        inputs={"versions.yaml": "0" * 64},
    )


def reseal(path: Path, edit: object) -> Path:
    """Apply `edit(data)` to a lock's JSON and seal it again (a regenerated lock, not a hand edit)."""
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    write_atomic(path, Lock.model_validate(data).sealed().to_json())
    return path


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obsplan", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def host_snapshot(path: Path) -> dict[str, tuple[str, int, str]]:
    """The --root tree minus obsplan's own state and logs (and the services' log files)."""
    own = ("var/lib/obsplan", "var/log/obsplan")
    return {
        k: v
        for k, v in tree_snapshot(path).items()
        if not k.startswith(own) and not k.endswith(".log") and k not in ("var/lib", "var/log", "var")
    }
