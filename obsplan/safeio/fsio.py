"""One durable atomic write, shared by the compiler (locks, reports, caches) and the executor (state, units), and
the one way a file the user names with `-o` is written (`write_output`).

Readers see the old bytes or the new bytes, never a half-written file, and after return the new name survives
a power cut: the data is fsynced before the rename and the directory after it.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from pathlib import Path

from obsplan.kernel.errors import ObsplanError


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Write `data` (text as UTF-8) to `path` atomically and durably, creating parent directories; the file's
    mode is `mode` when given (else mkstemp's 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_output(path: Path, data: str | bytes, key: str = "-o") -> None:
    """Write what the user asked for to `path`, the way a shell's `>` would treat what is there: a missing path or
    a regular file gets the atomic write above (a link there is replaced, never followed elsewhere); a character
    device or a FIFO (`-o /dev/null`, `-o /dev/stdout`, `-o >(gzip > x)`) is written into, never replaced (as
    root, renaming over `/dev/null` replaced the device with a file); this process's own streams (`/dev/stdout`,
    `/dev/stderr`, `/dev/fd/N`) are written through their descriptor, whatever they are; another link under /dev
    or /proc to a regular file is written through, appending; a directory, a block device or a socket is refused
    (exit 2)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ObsplanError(f"cannot use it: {exc.strerror or exc}", file=str(path), key=key) from None
    raw = data.encode() if isinstance(data, str) else data
    fd = _own_stream(path)
    if fd is not None:
        _write_fd(fd, raw, path, key)
    elif st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode) or _redirected(path, st)):
        _write_into(path, raw, key)
    elif st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a block device or a socket"
        raise ObsplanError(f"is {kind}, not a file", file=str(path), key=key, hint="name a file (or /dev/null)")
    else:
        write_atomic(path, data)


_OWN_STREAMS = {"/dev/stdout": 1, "/dev/stderr": 2}


def _own_stream(path: Path) -> int | None:
    """The descriptor `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` or `/proc/self/fd/N` names in this process: written
    through that descriptor itself (after what Python has buffered for it), so that a file redirected with `>`
    gets the bytes in order instead of two writers at two offsets."""
    text = os.path.normpath(str(path))
    if text in _OWN_STREAMS:
        return _OWN_STREAMS[text]
    for prefix in ("/dev/fd/", "/proc/self/fd/"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            return int(text[len(prefix) :])
    return None


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (os.write may write less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_fd(fd: int, data: bytes, path: Path, key: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        write_all(fd, data)
    except OSError as exc:
        raise ObsplanError(f"cannot write to it: {exc.strerror or exc}", file=str(path), key=key) from None


def _redirected(path: Path, st: os.stat_result) -> bool:
    """A link under /dev or /proc to a regular file that is not one of this process's own streams (those are
    `_own_stream`'s), e.g. `/proc/PID/fd/N` of another process: written through, never replaced."""
    return stat.S_ISREG(st.st_mode) and path.is_symlink() and os.path.abspath(path).startswith(("/dev/", "/proc/"))


def _write_into(path: Path, data: bytes, key: str) -> None:
    """Write into an open stream (a FIFO with no reader is refused instead of waiting for one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
    except OSError as exc:
        why = "no process reads from it" if exc.errno == errno.ENXIO else (exc.strerror or str(exc))
        raise ObsplanError(f"cannot write to it: {why}", file=str(path), key=key) from None
    try:
        os.set_blocking(fd, True)
        write_all(fd, data)
    finally:
        os.close(fd)
