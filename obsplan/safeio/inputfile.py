"""Read an input file that may be anything: only a regular file is read, at most `limit + 1` bytes.

A FIFO, a socket or a device (`/dev/zero`, `/dev/stdin`) given as an input file (versions.yaml, a policy, an
advisory, a `--facts` file, a lock) is refused at once with `NotRegularFile` — it is opened non-blocking, so a
FIFO with no writer never makes obsplan wait, and checked with `fstat` on the descriptor it would read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class NotRegularFile(OSError):
    """The path is not a regular file; `kind` says what it is."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"is {kind}, not a regular file")
        self.kind = kind
        self.strerror = f"is {kind}, not a regular file"


def read_regular(path: Path, limit: int) -> bytes:
    """At most `limit + 1` bytes of the regular file `path` (more than `limit` tells the caller it is too large).

    FileNotFoundError and other OSErrors pass through; a non-regular file raises `NotRegularFile`."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(_KINDS.get(stat.S_IFMT(mode), "not a regular file"))
        os.set_blocking(fd, True)
        parts, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)
