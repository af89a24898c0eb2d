"""One apply at a time per host: an flock on the state directory, naming the holder when refused."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import pid_alive
from obsplan.executor.reporters import now_iso

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.safeio.fsio import write_atomic
from obsplan.safeio.ownfiles import open_own


@contextmanager
def apply_lock(layout: Layout, command: str) -> Iterator[None]:
    """Kernel-held lock on `<root>/var/lib/obsplan/apply.lock`; the holder's pid and start time go to a side file."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    fd = open_own(layout.lock_path, os.O_RDWR | os.O_CREAT, "apply lock file")  # never through a link
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(layout)
            raise ObsplanError(
                f"another obsplan {holder.get('command', 'apply')} holds {layout.lock_path}: "
                f"pid {holder.get('pid', '?')} started at {holder.get('started_at', '?')}",
                hint="wait for it to finish; the lock is released by the kernel when that process exits",
                exit_code=EXIT_FAILED,
            ) from None
        write_atomic(
            layout.lock_info_path, json.dumps({"pid": os.getpid(), "started_at": now_iso(), "command": command}) + "\n"
        )
        try:
            yield
        finally:
            layout.lock_info_path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(layout: Layout) -> dict[str, Any]:
    try:
        fd = open_own(layout.lock_info_path, os.O_RDONLY, "apply lock holder file")
        with os.fdopen(fd, "rb") as fh:
            info = json.loads(fh.read(4096))
    except (OSError, ValueError, ObsplanError):
        return {}
    if isinstance(info, dict) and isinstance(info.get("pid"), int) and not pid_alive(info["pid"]):
        info["pid"] = f"{info['pid']} (exited?)"
    return info if isinstance(info, dict) else {}
