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

from obsplan.errors import EXIT_FAILED, ObsplanError
from obsplan.fsio import fsync_dir

from .. import artifacts as art
from .files import LOCK_NAME, MANIFEST_NAME, TMP_MARK, tmp_name, walk_files


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
    """Extract a bundle tar into `dest` (new or empty): refuses absolute paths, `..`, links and devices."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ObsplanError(
            f"{dest} exists and is not an empty directory", key="-o", hint="extract into a new directory"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}{TMP_MARK}", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:") as tar:
            art.check_plain_tar(tar, archive.name)
            tar.extractall(tmp, filter="data")
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except FileNotFoundError:
        raise ObsplanError(f"{archive} not found", key="--bundle") from None
    except tarfile.TarError as exc:
        raise ObsplanError(
            f"{archive} is not a plain tar bundle ({exc})",
            key="--bundle",
            hint="bundles are written by 'obsplan bundle LOCK -o FILE.tar'",
            exit_code=EXIT_FAILED,
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
