"""obsplan's own files (state.db, apply.lock, audit log, metrics, backups, the rollout journal rollouts.db) are
opened without following a final link.

A link where one of these files belongs (dangling or not) is refused: exit 2 naming the file, before anything
is read, created or written, so nothing outside the root is ever written through it. Their directories are
resolved inside the root by `executor.layout` (a link there may point anywhere under the root). Users' own files
(a configuration or password file that is a link) and obsplan's deliberate links (`current`, `/usr/local/bin`)
are not opened through here and keep working."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from obsplan.kernel.errors import ObsplanError

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def refusal(path: Path, what: str, why: str = "is a symbolic link") -> ObsplanError:
    return ObsplanError(
        f"{what} {why}; obsplan never follows a link to its own files",
        file=str(path),
        hint="remove it (obsplan creates the file itself) or choose another --root/--state-dir",
    )


def refuse_link(path: Path, what: str) -> None:
    """Exit 2 naming `path` when it is a symbolic link (dangling or not); anything else is left to the caller."""
    if path.is_symlink():
        raise refusal(path, what)


def open_own(path: Path, flags: int, what: str, mode: int = 0o600) -> int:
    """`os.open` with `O_NOFOLLOW`: a descriptor of a regular file, or exit 2 naming `path` (a link, a FIFO, a
    directory). Never blocks on a FIFO (opened non-blocking, the flag cleared once it is known regular)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise refusal(path, what) from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):
            raise refusal(path, what, "is not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise refusal(path, what, "is not a regular file")
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return fd


def check_sqlite(path: Path, what: str) -> None:
    """Before SQLite opens `path`: neither it nor its -wal/-shm/-journal companions may be a link."""
    for name in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        refuse_link(name, what)


def create_sqlite(path: Path, what: str) -> os.stat_result:
    """Create (or open) `path` as a regular file without following a link, mode 0600; its identity, for
    `same_file` after SQLite has opened it by name."""
    check_sqlite(path, what)
    fd = open_own(path, os.O_RDWR | os.O_CREAT, what)
    try:
        os.fchmod(fd, 0o600)
        return os.fstat(fd)
    finally:
        os.close(fd)


def same_file(path: Path, before: os.stat_result, what: str) -> None:
    """Exit 2 when `path` is no longer the file `before` describes (swapped for a link or another file)."""
    try:
        now = os.lstat(path)
    except OSError:
        raise refusal(path, what, "disappeared while it was opened") from None
    if stat.S_ISLNK(now.st_mode) or (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
        raise refusal(path, what, "was replaced while it was opened")
