"""A bundle as one file to carry: a plain, deterministic tar, extracted safely (no absolute paths, `..`, links or
devices) and opened as a directory for `apply --bundle`."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import obsplan.executor.artifacts.store as art
from obsplan.executor.artifacts.safe_extract import ARCHIVE_ERRNOS, disk_full
from obsplan.executor.bundle.files import LOCK_NAME, MANIFEST_NAME, TMP_MARK, tmp_name, walk_files

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import ArchiveLimits
from obsplan.safeio.fsio import fsync_dir


def write_tar(directory: Path, output: Path) -> None:
    """A plain tar of the bundle: lock and manifest first, then sorted paths; mtime 0, root:root, 0644."""
    rels = [rel for rel, p in walk_files(directory) if p.is_file() and not p.is_symlink()]
    head = [r for r in (LOCK_NAME, MANIFEST_NAME) if r in rels]
    tmp = tmp_name(output)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel in head + sorted(r for r in rels if r not in head):
                path = directory / rel
                info = tarfile.TarInfo(rel)
                info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(output.parent)


def extract_tar(archive: Path, dest: Path) -> None:
    """Extract a bundle tar into `dest` (new or empty): refuses absolute paths, `..`, over-long names, links,
    devices and sparse members, and holds the bundle to the limits of an artifact (`bundle_limits`), checked
    on each member's header before its bytes are written."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ObsplanError(
            f"{dest} exists and is not an empty directory", key="-o", hint="extract into a new directory"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}{TMP_MARK}", dir=dest.parent))
    try:
        _extract_members(archive, tmp)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except FileNotFoundError:
        raise ObsplanError(f"{archive} not found", key="--bundle") from None
    except OSError as exc:
        full = disk_full(exc, f"extracting {archive.name}")
        if full is not None:
            raise full from None
        if exc.errno in ARCHIVE_ERRNOS:
            raise art.UnsafeArchive(
                f"{archive.name}: a member cannot be created ({exc.strerror})", exit_code=EXIT_FAILED
            ) from None
        raise
    except (tarfile.TarError, EOFError, UnicodeError) as exc:
        raise ObsplanError(
            f"{archive} is not a plain tar bundle ({exc})",
            key="--bundle",
            hint="bundles are written by 'obsplan bundle LOCK -o FILE.tar'",
            exit_code=EXIT_FAILED,
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# A bundle holds one lock's artifacts: each member is held to what one artifact may expand to, the whole to
# BUNDLE_ARTIFACTS artifacts' worth, the count of members to an artifact's.
BUNDLE_ARTIFACTS = 16


def bundle_limits() -> tuple[int, int, int]:
    """(bytes per member, bytes in all, members) a bundle may hold."""
    limits = ArchiveLimits()
    return limits.max_total_bytes, limits.max_total_bytes * BUNDLE_ARTIFACTS, limits.max_members


def _extract_members(archive: Path, tmp: Path) -> None:
    """Stream the tar: each member is checked (placement, kind, size, count) from its header, then written."""
    per_member, total_cap, max_members = bundle_limits()
    total = count = 0
    with tarfile.open(archive, "r:") as tar:
        for m in tar:
            count += 1
            if count > max_members:
                raise _over(archive, f"more than {max_members} members")
            art.check_plain_member(m, archive.name)
            total += m.size
            if m.size > per_member or total > total_cap:
                raise _over(
                    archive, f"{m.name[:80]!r} makes {total} bytes (at most {per_member} per file, {total_cap} in all)"
                )
            _write_member(tar, m, tmp, archive.name)


def _write_member(tar: tarfile.TarFile, m: tarfile.TarInfo, tmp: Path, archive: str) -> None:
    """Write one checked member (a directory or a regular file) ourselves: new files only (a second member of
    the same name is refused, never overwritten), no link followed, files 0644 and directories 0755 whatever the
    header says. (tarfile's `filter="data"` would do as much but needs Python 3.11.4; bookworm has 3.11.2.)"""
    try:
        _write_checked(tar, m, tmp / m.name)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise art.UnsafeArchive(
            f"{archive}: member {m.name[:200]!r} collides with another member",
            exit_code=EXIT_FAILED,
        ) from None


def _write_checked(tar: tarfile.TarFile, m: tarfile.TarInfo, target: Path) -> None:
    if m.isdir():
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    src = tar.extractfile(m)
    assert src is not None  # a regular member always has a file object
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _over(archive: Path, what: str) -> ObsplanError:
    return ObsplanError(
        f"{archive.name}: {what}; nothing was extracted",
        key="--bundle",
        hint="bundles are written by 'obsplan bundle LOCK -o FILE.tar'; this one is not",
        exit_code=EXIT_FAILED,
    )


@contextmanager
def opened(bundle: Path) -> Iterator[Path]:
    """The bundle as a directory: itself, or a plain tar extracted into a temp directory removed afterwards."""
    if bundle.is_dir():
        yield bundle
        return
    if not bundle.is_file():
        raise ObsplanError(
            f"bundle {bundle} not found",
            key="--bundle",
            hint="build one with 'obsplan bundle LOCK -o DIR' on a connected machine",
        )
    tmp = Path(tempfile.mkdtemp(prefix="obsplan-bundle-"))
    try:
        extract_tar(bundle, tmp / "b")
        yield tmp / "b"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
