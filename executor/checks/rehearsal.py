"""Rehearsal of a one-way step before its switch (`rehearsal:` of policies/services.yaml): the target release
started on a free loopback port against a disposable copy of the data directory (immutable blocks hard-linked,
the WAL and head chunks copied) and a copy of the configuration with scraping, rules, alerting and remote
write removed, so it never scrapes, pages or writes anywhere; it must become ready and answer a query over a
series the running version holds. The copy is discarded afterwards, whatever happened.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from obsplan.executor.host.layout import Layout
from obsplan.executor.services.service_render import render_service

from obsplan.lock.lockfile import Runtime
from obsplan.lock.service_def import Rehearsal

SCRATCH = "var/lib/obsplan/rehearsal"
LOG_TAIL = 1500


class RehearsalFailed(Exception):
    """The target did not start, become ready or answer over the copied data."""


@dataclass(frozen=True)
class Copied:
    linked: int  # files hard-linked (immutable blocks)
    copied: int  # files copied (WAL, head chunks, anything mutable)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_data(source: Path, dest: Path, spec: Rehearsal) -> Copied:
    """A disposable copy of `source`: directories holding the immutable marker hard-linked file by file
    (copied when the scratch is on another filesystem), everything else copied; `spec.skip` left out."""
    linked = copied = 0
    dest.mkdir(parents=True)
    for entry in sorted(source.iterdir()) if source.is_dir() else []:
        if entry.name in spec.skip or entry.is_symlink():
            continue
        if entry.is_dir() and (entry / spec.immutable_marker).is_file():
            for f in sorted(p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()):  # a link: left out
                target = dest / f.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                if _link_or_copy(f, target):
                    linked += 1
                else:
                    copied += 1
        elif entry.is_dir():
            shutil.copytree(entry, dest / entry.name, symlinks=True)
            copied += sum(1 for p in (dest / entry.name).rglob("*") if p.is_file())
        elif entry.is_file():
            shutil.copy2(entry, dest / entry.name)
            copied += 1
    return Copied(linked, copied)


def _link_or_copy(src: Path, dst: Path) -> bool:
    """Hard-link `src` at `dst` (True); copy it when the filesystem cannot (False)."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)
        return False
    return True


def stripped_config(config: Path | None, dest: Path, spec: Rehearsal) -> Path | None:
    """The configuration without the keys that reach out; None when the service runs without one."""
    if config is None or not config.is_file():
        return None
    data = yaml.safe_load(config.read_text()) or {}
    if not isinstance(data, dict):
        raise RehearsalFailed(f"{config} is not a mapping")
    for key in spec.strip:
        data.pop(key, None)
    dest.write_text(yaml.safe_dump(data, sort_keys=True))
    return dest


def held_series(client: httpx.Client, host: str, port: int) -> str | None:
    """A metric name the running version holds (`up` when it has it), from its label-values API."""
    try:
        r = client.get(f"http://{host}:{port}/api/v1/label/__name__/values", timeout=10)
        names = r.json().get("data") or [] if r.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return None
    names = [n for n in names if isinstance(n, str)]
    return "up" if "up" in names else (names[0] if names else None)


def scratch_runtime(runtime: Runtime, layout: Layout, scratch: Path, config: Path | None, port: int) -> Runtime:
    """The runtime of the rehearsal: loopback port, the copies' paths (as host paths under --root)."""
    rel = "/" + str(scratch.relative_to(layout.root))
    update: dict[str, Any] = {"port": port, "listen_address": "127.0.0.1", "data_dir": f"{rel}/data"}
    update["config_file"] = f"{rel}/{config.name}" if config is not None else None
    return runtime.model_copy(update=update)


def start(
    component: str, runtime: Runtime, version: str, layout: Layout, binary: Path, log: Path
) -> subprocess.Popen[bytes]:
    argv = render_service(component, runtime, version, layout).argv
    argv[0] = str(binary)  # the target release's binary, not the running version's exposed one
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=log.parent)


def wait_ready(proc: subprocess.Popen[bytes], client: httpx.Client, url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RehearsalFailed(f"exited with status {proc.returncode}: {log_tail(log)}")
        try:
            if client.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RehearsalFailed(f"not ready within {timeout:.0f}s: {log_tail(log)}")
        time.sleep(0.2)


def answered(client: httpx.Client, port: int, name: str, at: float) -> int:
    """How many series of `name` the rehearsal answers over the copied data (last hour before `at`)."""
    query = f'count(last_over_time({{__name__="{name}"}}[1h]))'
    r = client.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query, "time": f"{at:.3f}"}, timeout=30)
    result = r.json().get("data", {}).get("result", []) if r.status_code == 200 else []
    return int(float(result[0]["value"][1])) if result else 0


def stop(proc: subprocess.Popen[bytes], wait: float = 30.0) -> None:
    """SIGTERM, wait (a TSDB closes its head cleanly), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def log_tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace")[-LOG_TAIL:].strip().splitlines()[-8:])
    except OSError:
        return "(no output)"
