"""A lock's bytes, read once: a regular file opened without following a final symlink, size-capped.

Everything that checks a lock and then uses it (a signature verified, the JSON parsed, the applied copy kept,
a bundle compared, a rollout's upload) works on the bytes this returns, never on a second read of the path:
a file swapped after the check cannot be what is used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.jsonload import MAX_BYTES

_HINT = "pass the lock file itself (a regular file, not a link), as 'obsplan plan' wrote it"


def read_lock_bytes(path: Path, what: str = "lock") -> bytes:
    """The file's bytes (at most `MAX_BYTES`); ObsplanError (exit 2) for a link, a directory, a FIFO or device,
    an unreadable or oversized file; FileNotFoundError-free: a missing lock names `obsplan plan`."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ObsplanError(f"{what} file not found", file=str(path), hint="run 'obsplan plan' first") from None
    except OSError as exc:
        if os.path.islink(path):
            raise ObsplanError(f"{what} is a symbolic link", file=str(path), hint=_HINT) from None
        raise ObsplanError(f"cannot read {what}: {exc.strerror or exc}", file=str(path), hint=_HINT) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ObsplanError(f"{what} is {kind}", file=str(path), hint=_HINT)
        if st.st_size > MAX_BYTES:
            raise ObsplanError(f"{what} is larger than {MAX_BYTES} bytes", file=str(path), hint=_HINT)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ObsplanError(f"cannot read {what}: {exc.strerror or exc}", file=str(path), hint=_HINT) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_BYTES:
        raise ObsplanError(f"{what} is larger than {MAX_BYTES} bytes", file=str(path), hint=_HINT)
    return data
