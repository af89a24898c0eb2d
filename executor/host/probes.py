"""Host facts: which version a binary reports, which version a service serves, health, platform, disk."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
from obsplan.executor.state.state_db import StateDB

VERSION_LINE_RE = re.compile(r"^(\S+), version (\S+) \(branch: ([^,]*), revision: ([^)]*)\)")
# Debian builds: `2.53.3+ds1`, `0.28.1+ds`, `0.11.0-1+b4`, `2.42.0+ds-5+deb12u1` are the release X.Y.Z
_DEBIAN_RE = re.compile(r"^(\d+\.\d+\.\d+)(?:\+ds\d*)?(?:-\d+(?:\+[a-z0-9.]+)?)?$")
_PLATFORMS = {"x86_64": "linux-amd64", "amd64": "linux-amd64", "aarch64": "linux-arm64", "arm64": "linux-arm64"}


def normalise_version(text: str) -> str:
    """`v2.53.3+ds1` → `2.53.3`, `0.11.0-1+b4` → `0.11.0`: drop a leading v and Debian's repack suffix and
    revision (a prerelease such as `3.0.0-rc.0` is kept)."""
    text = text.strip()
    if text.startswith("v"):
        text = text[1:]
    m = _DEBIAN_RE.match(text)
    return m.group(1) if m else text


@dataclass(frozen=True)
class VersionInfo:
    program: str
    version: str
    branch: str
    revision: str


def parse_version_output(stdout: str, stderr: str, patterns: list[str] | tuple[str, ...] = ()) -> VersionInfo | None:
    """The prometheus/common `--version` first line, from stdout or stderr (kingpin prints to either), else
    the first line matching one of the service definition's `patterns` (group 1: the version)."""
    for text in (stdout, stderr):
        for line in text.splitlines()[:3]:
            m = VERSION_LINE_RE.match(line.strip())
            if m:
                return VersionInfo(m.group(1), normalise_version(m.group(2)), m.group(3), m.group(4))
    for pattern in patterns:
        for text in (stdout, stderr):
            for line in text.splitlines()[:3]:
                m = re.match(pattern, line.strip())
                if m:
                    return VersionInfo("", normalise_version(m.group(1)), "", "")
    return None


def probe_binary_version(
    path: Path, args: list[str], cache: StateDB | None = None, patterns: list[str] | tuple[str, ...] = ()
) -> str | None:
    """Run `<path> --version` (reading both streams) and return the normalised version, or None.

    Results are cached in `version_cache` keyed by (path, size, mtime, inode) of the resolved file.
    """
    try:
        real = path.resolve(strict=True)
        st = real.stat()
    except OSError:
        return None
    if cache is not None:
        hit, version = cache.cached_version(str(real), st)
        if hit:
            return version
    try:
        proc = subprocess.run(
            [str(real), *args],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
            stdin=subprocess.DEVNULL,
            errors="replace",
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    info = parse_version_output(proc.stdout, proc.stderr, patterns)
    version = info.version if info else None
    if cache is not None:
        cache.cache_version(str(real), st, version, (proc.stdout + proc.stderr)[:2000])
    return version


def _url(host: str, port: int, path: str) -> str:
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


def served_build_info(
    client: httpx.Client, port: int, metric: str, timeout: float = 3.0, host: str = "127.0.0.1"
) -> str | None:
    """The `version` label of `<metric>{...}` on http://<host>:<port>/metrics, or None."""
    try:
        resp = client.get(_url(host, port, "/metrics"), timeout=timeout)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    pattern = re.compile(rf"^{re.escape(metric)}\{{[^}}]*\bversion=\"([^\"]*)\"", re.M)
    m = pattern.search(resp.text)
    return normalise_version(m.group(1)) if m else None


def healthy(client: httpx.Client, port: int, path: str, timeout: float = 3.0, host: str = "127.0.0.1") -> bool:
    try:
        return client.get(_url(host, port, path), timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def host_platform() -> str:
    machine = platform.machine().lower()
    return _PLATFORMS.get(machine, f"linux-{machine}")


def free_bytes(path: Path) -> int:
    """Free space on the file system holding `path` (or its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
