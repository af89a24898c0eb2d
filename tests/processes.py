"""Stopping what a test started, fast and completely, and waiting by polling instead of fixed sleeps.

A test's supervisord is torn down with its programs by `kill_tree`: the tree is frozen (SIGSTOP, so nothing
restarts or forks meanwhile), then killed. A graceful SIGTERM would make supervisord stop its programs one
main-loop tick at a time (about 2 s per root), and nothing a test checks happens after its teardown."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its parent counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry.name))
    return out


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def kill_tree(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL `pid` and all its descendants, frozen first top-down; returns once every one has exited."""
    frozen: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        _signal(current, signal.SIGSTOP)
        frozen.append(current)
        todo += [c for c in _children(current) if c not in frozen]
    for each in frozen:
        _signal(each, signal.SIGKILL)
    wait_until(lambda: all(gone(p) for p in frozen), timeout, what=f"processes {frozen} to exit")


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Terminate a process this test started; SIGKILL when it has not exited after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(ready: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    """Poll `ready` every `interval` seconds until it holds; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
