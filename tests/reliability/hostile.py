"""Shared parts of the executor's trust-boundary tests: a hostile archive corpus built in the test, a sandbox
that proves nothing outside `--root` changed, a host with a previous version installed, sealed locks with a
chosen `host_policy`, a fault-injecting HTTP server, and small real filesystems (tmpfs) for ENOSPC."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from obsplan.executor.host.probes import host_platform

from obsplan.cli.main import main
from obsplan.lock.lockfile import (
    ArchiveLimits,
    Artifact,
    HostPolicy,
    Reason,
    Runtime,
    Step,
)
from tests.lockbuild import component_lock, write_sealed_lock

PLATFORM = host_platform()
NAME = "tool"
OLD, NEW = "1.0.0", "2.0.0"
SAFE_FILE = "tool-2.0.0/tool"

# --------------------------------------------------------------------------------------------- corpus


def tar_member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"", mode: int = 0o644
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size = kind, link, mode, len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def zip_member(name: str, data: bytes = b"x", mode: int | None = 0o100644) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: the mode is in the high bits of external_attr
    if mode is not None:
        info.external_attr = mode << 16
    return info, data


def zip_link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    return zip_member(name, target.encode(), 0o120777)


def write_zip(path: Path, members: list[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the corpus
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in members:
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
    return path


def chain_names(depth: int) -> tuple[list[tuple[str, str]], str]:
    """`d/l -> ..`, `d/l/x1 -> ..`, … each link harmless by its own text; then a FILE through all of them.

    Resolved on disk, the FILE lands `depth - 1` directories above the version directory (depth 1 stays inside)."""
    links, parent = [("d/l", "..")], "d/l"
    for i in range(1, depth):
        parent = f"{parent}/x{i}"
        links.append((parent, ".."))
    return links, f"{parent}/ESCAPED"


def tar_chain(path: Path, depth: int) -> Path:
    links, file = chain_names(depth)
    members = [tar_member("d/", tarfile.DIRTYPE)]
    members += [tar_member(n, tarfile.SYMTYPE, t) for n, t in links]
    return write_tar(path, [*members, tar_member(file, data=b"pwned\n")])


def zip_chain(path: Path, depth: int) -> Path:
    links, file = chain_names(depth)
    return write_zip(
        path, [zip_member("d/", b"", 0o040755), *[zip_link(n, t) for n, t in links], zip_member(file, b"pwned\n")]
    )


def zeros_tar(path: Path, size: int, files: int = 1) -> Path:
    """A tar.gz of `files` files of zeros, streamed (never `size` bytes in memory)."""
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tar,
    ):
        for i in range(files):
            info = tarfile.TarInfo(f"z/zero{i}")
            info.size = size // files
            tar.addfile(info, _Zeros(info.size))
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------- host


def snapshot(top: Path, skip: Path | None = None) -> dict[str, tuple[str, str]]:
    """Every path under `top` (except under `skip`) with its kind and content digest / link target."""
    out: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            rel = str(p.relative_to(top))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", "")
            elif p.is_file():
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                out[rel] = ("other", "")
    return out


@dataclass
class Host:
    """`outer/a/b/c/d/e/root`: deep enough that link chains of every tested depth still land inside `outer`,
    where the snapshot proves nothing appeared. `root` has `tool` 1.0.0 installed (version dir, current, bin)."""

    outer: Path

    @property
    def root(self) -> Path:
        return self.outer / "a" / "b" / "c" / "d" / "e" / "root"

    @property
    def opt(self) -> Path:
        return self.root / "opt" / "obsplan" / NAME

    @property
    def downloads(self) -> Path:
        return self.root / "var" / "cache" / "obsplan" / "downloads"

    def install_old(self) -> None:
        vdir = self.opt / OLD / f"tool-{OLD}"
        vdir.mkdir(parents=True)
        (vdir / "tool").write_text(f"#!/bin/sh\necho 'tool, version {OLD} (branch: HEAD, revision: x)'\n")
        (vdir / "tool").chmod(0o755)
        os.symlink(OLD, self.opt / "current")
        bin_dir = self.root / "usr" / "local" / "bin"
        bin_dir.mkdir(parents=True)
        os.symlink(os.path.relpath(self.opt / "current" / f"tool-{OLD}" / "tool", bin_dir), bin_dir / "tool")

    def outside(self) -> dict[str, tuple[str, str]]:
        return snapshot(self.outer, skip=self.root)

    def installed_tree(self) -> dict[str, tuple[str, str]]:
        return {**snapshot(self.root / "opt"), **{f"bin/{k}": v for k, v in snapshot(self.root / "usr").items()}}

    def assert_untouched(self, outside: dict[str, tuple[str, str]], installed: dict[str, tuple[str, str]]) -> None:
        """Nothing appeared outside the root; the installed tree (versions, current, bin links) is as it was."""
        assert self.outside() == outside
        assert self.installed_tree() == installed
        assert os.readlink(self.opt / "current") == OLD
        assert not list(self.opt.glob(".tmp-*")), "the partial tree was not removed"
        assert not list(self.downloads.glob(".*.part-*")) if self.downloads.is_dir() else True


@contextmanager
def host(disk_mib: int | None = None) -> Iterator[Host]:
    """A sandboxed host; with `disk_mib`, its root is a real filesystem of that size (a tmpfs) for ENOSPC."""
    with tempfile.TemporaryDirectory(prefix="obrel", dir="/tmp") as d:
        h = Host(Path(d))
        with tmpfs(h.root, disk_mib) if disk_mib else nullcontext(h.root):
            h.install_old()
            try:
                yield h
            finally:
                _stop_supervisord(h.root)  # before the tmpfs is unmounted


def _stop_supervisord(root: Path) -> None:
    """A supervisord an apply started under this root is stopped with it (it stops its programs), never left."""
    pidfile = root / "run" / "supervisord.pid"
    with suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # ProcessLookupError (an OSError) once it is gone
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def runtime(port: int = 9) -> Runtime:
    return Runtime(binaries={NAME: "*/tool"}, service_binary=NAME, port=port, health_path="/metrics")


def write_lock(
    path: Path,
    artifact: Path,
    fmt: str,
    url: str | None = None,
    limits: ArchiveLimits | None = None,
    deadline: int = 900,
    sha: str | None = None,
    floor: str | None = None,
    size: int | None = None,
) -> Path:
    """A sealed lock upgrading `tool` 1.0.0 → 2.0.0 from `artifact` (by file name; `url` for HTTP; `size`: the
    artifact's size as the lock states it)."""
    art = Artifact(
        url=url or f"https://example.invalid/{artifact.name}",
        filename=artifact.name,
        format=fmt,  # type: ignore[arg-type]
        sha256=sha or sha256(artifact),
        size=size,
    )
    step = Step(
        id=f"{NAME}-{NEW}",
        component=NAME,
        from_version=OLD,
        to_version=NEW,
        phase="p",
        requires=[],
        risk="low",
        reasons=[Reason(code="test", detail="hostile corpus")],
        artifacts={PLATFORM: art},
        rollback_floor=floor,
    )
    comp = component_lock(OLD, NEW, {PLATFORM: art}, runtime(), github_repo=None)
    policy = HostPolicy(archive_limits=limits or ArchiveLimits(), download_deadline_seconds=deadline)
    return write_sealed_lock(path, {NAME: comp}, [step], ["p"], platforms=[PLATFORM], host_policy=policy)


@dataclass
class Outcome:
    exit_code: int
    output: str
    events: list[dict[str, Any]]

    def failure(self) -> dict[str, Any]:
        failed = [flat(e) for e in self.events if e.get("event") == "step_failed"]
        assert failed, self.output
        return failed[-1]


def cli(*args: str) -> Outcome:
    result = CliRunner().invoke(main, list(args))
    events = []
    for line in result.output.splitlines():
        if line.startswith("{"):
            with suppress(ValueError):
                events.append(json.loads(line))
    return Outcome(result.exit_code, result.output, events)


def apply(h: Host, lock: Path, *extra: str) -> Outcome:
    return cli("apply", str(lock), "--root", str(h.root), "--service-manager", "supervisord", "--json", *extra)


def flat(event: dict[str, Any]) -> dict[str, Any]:
    """An event with its metadata merged in (the JSON reporter may nest it)."""
    return {**event, **event.get("metadata", {})} if isinstance(event.get("metadata"), dict) else event


# --------------------------------------------------------------------------------------------- HTTP faults


class FaultHandler(http.server.BaseHTTPRequestHandler):
    """/ok/NAME serves a file; /trickle and /trickle5 (a byte every 1 or 5 s), /truncate (half of the declared
    length), /longer (more bytes than declared), /500, /huge (a 100 MiB stream)."""

    files: dict[str, bytes] = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        kind, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name, b"")
        with suppress(BrokenPipeError, ConnectionResetError):
            getattr(self, f"_{kind}")(body)

    def _head(self, length: int, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _ok(self, body: bytes) -> None:
        self._head(len(body))
        self.wfile.write(body)

    def _trickle(self, body: bytes, every: float = 1.0) -> None:
        self._head(1000)
        for _ in range(1000):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(every)

    def _trickle5(self, body: bytes) -> None:
        self._trickle(body, every=5.0)

    def _truncate(self, body: bytes) -> None:
        self._head(len(body))
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _longer(self, body: bytes) -> None:
        self._head(len(body) // 2)
        self.wfile.write(body)

    def _500(self, body: bytes) -> None:
        self._head(5, 500)
        self.wfile.write(b"oops!")

    def _huge(self, body: bytes) -> None:
        size = 100 * 1024 * 1024
        self._head(size)
        chunk = b"\x01" * (1 << 20)
        for _ in range(size // len(chunk)):
            self.wfile.write(chunk)


@contextmanager
def fault_server(files: dict[str, bytes]) -> Iterator[str]:
    yield from serve(type("Handler", (FaultHandler,), {"files": files}))


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded local HTTP server of `handler`: its base URL, then stopped (threads are daemons)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------- small disks


@contextmanager
def tmpfs(where: Path, size_mib: int) -> Iterator[Path]:
    """A real, small filesystem mounted at `where` (unmounted at the end); skips when mounting is not allowed."""
    import pytest

    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
