"""Extraction that cannot escape its directory, and cannot fill the disk before it is stopped.

Every member is placed by resolving its parent against what is already on disk (links followed), so a chain
such as `d/l -> ..`, `d/l/x -> ..`, `d/l/x/FILE` is refused at the member that would leave the directory,
at any depth. Link targets are checked twice: as text (they must stay inside once renamed into place) and
resolved on disk. Names longer than a path can be, devices, FIFOs, duplicate names and hardlinks to anything but an extracted regular file
are refused. The member count, the uncompressed bytes and the ratio to the compressed size are counted while
streaming (`ArchiveLimits` from the lock's `host_policy`), so a bomb is stopped before the disk fills.
A full disk is reported as `DiskFull` (exit 1, reason `disk_full`). The caller removes the partial tree.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import ArchiveLimits

CHUNK = 1 << 16
RATIO_FLOOR = 1 << 20  # the ratio is judged once this many bytes were written (tiny files compress arbitrarily)
MAX_LINK_TARGET = 4096
MAX_NAME_BYTES = 4095  # PATH_MAX less the terminating NUL; each component at most NAME_MAX (255) bytes
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
ARCHIVE_ERRNOS = (errno.ENAMETOOLONG, errno.EILSEQ, errno.ELOOP, errno.EMLINK, errno.EFBIG)


class UnsafeArchive(ObsplanError):
    pass


class ArchiveLimitsExceeded(ObsplanError):
    reason = "archive_limits"


class DiskFull(ObsplanError):
    reason = "disk_full"


def _unsafe(archive: str, what: str) -> UnsafeArchive:
    return UnsafeArchive(
        f"{archive}: {what}", hint="the archive is malformed or hostile; nothing was installed", exit_code=EXIT_FAILED
    )


def member_path(name: str, archive: str) -> PurePosixPath:
    """The member's relative path; absolute names, `..`, NUL bytes and over-long names are refused."""
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES or any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in name.split("/")):
        raise _unsafe(archive, f"member name of {size} bytes {name[:60]!r}… is longer than a path can be")
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise _unsafe(archive, f"absolute path {name!r} in archive")
    if "\x00" in name:
        raise _unsafe(archive, f"NUL byte in member name {name!r}")
    p = PurePosixPath(name)
    if ".." in p.parts:
        raise _unsafe(archive, f"path {name!r} escapes the target directory")
    return p


def link_text_inside(member: PurePosixPath, target: str, archive: str, hard: bool = False) -> None:
    """A link's text, read relative to its member's directory, never climbs above the top."""
    if target.startswith("/") or not target:
        raise _unsafe(archive, f"link {str(member)!r} points to absolute or empty {target!r}")
    depth = 0
    for part in ((PurePosixPath() if hard else member.parent) / target).parts:
        depth += -1 if part == ".." else 0 if part in (".", "") else 1
        if depth < 0:
            raise _unsafe(archive, f"link {str(member)!r} points outside ({target!r})")


class Extractor:
    """Writes members into `dest` (a new, empty directory) one at a time, checking placement and limits."""

    def __init__(self, dest: Path, archive: Path, limits: ArchiveLimits) -> None:
        self.dest = dest
        self.top = os.path.realpath(dest)
        self.name = archive.name
        self.compressed = max(archive.stat().st_size, 1)
        self.limits = limits
        self.members = 0
        self.written = 0
        self.seen: set[PurePosixPath] = set()
        self.files: set[str] = set()  # real paths of extracted regular files (hardlink targets)

    # -- placement ---------------------------------------------------------------------------------------------
    def _inside(self, real: str) -> bool:
        return real == self.top or real.startswith(self.top + os.sep)

    def place(self, p: PurePosixPath, directory: bool = False) -> str:
        """The real path where member `p` goes: its parent resolved on disk (links followed), proven inside."""
        parent = os.path.realpath(os.path.join(self.top, *p.parent.parts))
        if not self._inside(parent):
            raise _unsafe(self.name, f"{str(p)!r} would be written outside the target directory (through a link)")
        where = os.path.join(parent, p.name)
        if os.path.lexists(where) and not (directory and os.path.isdir(where)):
            raise _unsafe(self.name, f"duplicate member {str(p)!r}")
        return where

    def admit(self, name: str) -> PurePosixPath | None:
        """Count the member and check its name; None for the top itself (`.` / `./`)."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise self.over(f"more than {self.limits.max_members} members")
        p = member_path(name, self.name)
        if not p.parts or p == PurePosixPath("."):
            return None
        if p in self.seen:
            raise _unsafe(self.name, f"duplicate member {str(p)!r}")
        self.seen.add(p)
        return p

    def over(self, what: str) -> ArchiveLimitsExceeded:
        return ArchiveLimitsExceeded(
            f"{self.name}: {what} (limits: {self.limits.max_total_bytes} bytes, {self.limits.max_members} members, "
            f"ratio {self.limits.max_ratio:g}); extraction stopped, nothing was installed",
            hint="raise archive_limits in upgrade-policy.yaml and re-plan if this artifact is genuine",
            exit_code=EXIT_FAILED,
        )

    # -- writers -----------------------------------------------------------------------------------------------
    def directory(self, p: PurePosixPath) -> None:
        where = self.place(p, directory=True)
        os.makedirs(where, mode=0o755, exist_ok=True)
        if not self._inside(os.path.realpath(where)):  # pragma: no cover - place() already resolved the parent
            raise _unsafe(self.name, f"directory {str(p)!r} resolves outside")

    def _parent(self, p: PurePosixPath) -> None:
        if p.parent.parts:
            self.directory(p.parent)

    def regular(self, p: PurePosixPath, stream: IO[bytes], mode: int) -> None:
        self._parent(p)
        where = self.place(p)
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755 if mode & 0o111 else 0o644)
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                self.count(len(chunk))
                out.write(chunk)
        self.files.add(os.path.realpath(where))

    def count(self, n: int) -> None:
        self.written += n
        if self.written > self.limits.max_total_bytes:
            raise self.over(f"more than {self.limits.max_total_bytes} uncompressed bytes")
        if self.written > RATIO_FLOOR and self.written > self.limits.max_ratio * self.compressed:
            raise self.over(f"expands more than {self.limits.max_ratio:g} times its {self.compressed} bytes")

    def symlink(self, p: PurePosixPath, target: str) -> None:
        link_text_inside(p, target, self.name)
        self._parent(p)
        where = self.place(p)
        resolved = os.path.realpath(os.path.join(os.path.dirname(where), target))
        if not self._inside(resolved):
            raise _unsafe(self.name, f"link {str(p)!r} -> {target!r} resolves outside the target directory")
        os.symlink(target, where)

    def hardlink(self, p: PurePosixPath, target: str) -> None:
        link_text_inside(p, target, self.name, hard=True)
        source = os.path.realpath(os.path.join(self.top, target))
        if source not in self.files:
            raise _unsafe(self.name, f"hardlink {str(p)!r} points outside ({target!r}) or to no extracted file")
        self._parent(p)
        os.link(source, self.place(p))

    def finish(self) -> None:
        """Links created early may resolve differently once later members exist: every link must still be inside."""
        for dirpath, dirnames, filenames in os.walk(self.top):
            for n in dirnames + filenames:
                path = os.path.join(dirpath, n)
                if os.path.islink(path) and not self._inside(os.path.realpath(path)):
                    raise _unsafe(self.name, f"link {os.path.relpath(path, self.top)!r} resolves outside")


def extract(archive: Path, fmt: str, dest: Path, limits: ArchiveLimits) -> None:
    """Extract a tar.gz or zip into the new, empty directory `dest`; every refusal is exit 1 (never a traceback)."""
    try:
        (extract_tar if fmt == "tar.gz" else extract_zip)(archive, dest, limits)
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        UnicodeError,
    ) as exc:
        raise _unsafe(archive.name, f"not a readable {fmt} ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        full = disk_full(exc, f"extracting {archive.name}")
        if full is not None:
            raise full from None
        if exc.errno in ARCHIVE_ERRNOS:  # what the archive asked for cannot be made (a name too long, …)
            raise _unsafe(archive.name, f"a member cannot be created ({exc.strerror})") from None
        raise


def extract_tar(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    ex = Extractor(dest, archive, limits)
    with tarfile.open(archive, "r|gz") as tar:  # streamed: members are read once, in order
        for m in tar:
            p = ex.admit(m.name)
            if p is None:
                continue
            if m.isdir():
                ex.directory(p)
            elif m.issym():
                ex.symlink(p, m.linkname)
            elif m.islnk():
                ex.hardlink(p, m.linkname)
            elif m.isreg():
                stream = tar.extractfile(m)
                assert stream is not None
                ex.regular(p, stream, m.mode)
            else:
                raise _unsafe(ex.name, f"device or fifo {m.name!r} in archive")
    ex.finish()


def extract_zip(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    ex = Extractor(dest, archive, limits)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise ex.over(f"{len(infos)} members, more than {limits.max_members}")
        for info in infos:
            p = ex.admit(info.filename)
            if p is None:
                continue
            kind = _zip_kind(info)
            if kind == "dir":
                ex.directory(p)
            elif kind == "link":
                with zf.open(info) as fh:
                    raw = fh.read(MAX_LINK_TARGET + 1)
                if len(raw) > MAX_LINK_TARGET:
                    raise _unsafe(ex.name, f"link {info.filename!r} has an over-long target")
                ex.symlink(p, raw.decode("utf-8", "replace"))
            elif kind == "file":
                with zf.open(info) as fh:
                    ex.regular(p, fh, info.external_attr >> 16)
            else:
                raise _unsafe(ex.name, f"special file (device or fifo) {info.filename!r}")
    ex.finish()


def _zip_kind(info: zipfile.ZipInfo) -> str:
    """dir, link, file or special. Permission bits without file-type bits (Python's zipfile) are a file."""
    mode = info.external_attr >> 16
    fmt = stat.S_IFMT(mode)
    if info.is_dir() or fmt == stat.S_IFDIR:
        return "dir"
    if fmt == stat.S_IFLNK:
        return "link"
    if fmt in (0, stat.S_IFREG):
        return "file"
    return "special"


def disk_full(exc: BaseException, where: str) -> DiskFull | None:
    """A DiskFull naming `where` when `exc` is ENOSPC/EDQUOT (or SQLite's 'database or disk is full')."""
    full = isinstance(exc, OSError) and exc.errno in FULL_ERRNOS
    full = full or "database or disk is full" in str(exc)
    if not full:
        return None
    return DiskFull(
        f"no space left on the device while {where}; everything partial was removed",
        hint="free disk space under --root, then apply again",
        exit_code=EXIT_FAILED,
    )
