"""Write a small tree of files under one output directory, never through a link and never outside it.

`obsplan export ansible -o DIR` writes its playbook this way; the discipline is `plan -o`'s (`fsio.write_atomic`):
each file is written to a fresh temporary name (`O_CREAT|O_EXCL|O_NOFOLLOW`) and renamed over the old name, so a
link planted where a file goes is replaced, never written through. Every directory below DIR is walked from DIR's
own descriptor with `O_NOFOLLOW` (a link planted where a directory goes, e.g. `DIR/roles`, is refused: exit 2
naming it), so nothing lands outside DIR whatever DIR holds. DIR itself is the user's choice and may be a link."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.fsio import write_all

_HINT = "remove it: obsplan writes only regular files and directories under the output directory"


def write_tree(out: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write `files` (relative POSIX path → bytes) under `out` (created when missing); the paths written, sorted."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        top = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ObsplanError(f"cannot use the output directory: {exc.strerror}", file=str(out), key="-o") from None
    try:
        for rel, data in sorted(files.items()):
            parts = PurePosixPath(rel).parts
            if not parts or any(p in ("", ".", "..", "/") for p in parts):
                raise ValueError(f"not a relative file path: {rel!r}")  # obsplan's own names: a bug if hit
            fd = _descend(top, out, parts[:-1])
            try:
                _write_at(fd, parts[-1], data, out / rel)
            finally:
                if fd != top:
                    os.close(fd)
        os.fsync(top)
    finally:
        os.close(top)
    return sorted(out / rel for rel in files)


def _descend(top: int, out: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of `out/parts...`, each directory created when missing and opened without following a link."""
    fd = top
    for i, part in enumerate(parts):
        here = out.joinpath(*parts[: i + 1])
        try:
            os.mkdir(part, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        except OSError as exc:
            _close_below(fd, top)
            raise ObsplanError(f"cannot create the directory: {exc.strerror}", file=str(here), hint=_HINT) from None
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            _close_below(fd, top)
            why = "is a symbolic link" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror
            raise ObsplanError(f"{why}; obsplan does not write through links", file=str(here), hint=_HINT) from None
        _close_below(fd, top)
        fd = child
    return fd


def _close_below(fd: int, top: int) -> None:
    if fd != top:
        os.close(fd)


def _write_at(dir_fd: int, name: str, data: bytes, shown: Path) -> None:
    """`data` to a fresh temporary file in `dir_fd`, fsynced, renamed over `name` (a link there is replaced)."""
    tmp = f".{name}.{os.getpid()}.tmp"
    try:
        os.unlink(
            tmp, dir_fd=dir_fd
        )  # a leftover of ours (or anything planted under that name: unlinked, not followed)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ObsplanError(f"cannot write: {exc.strerror}", file=str(shown), hint=_HINT) from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o644, dir_fd=dir_fd)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise ObsplanError(f"cannot write: {exc.strerror}", file=str(shown), hint=_HINT) from None
