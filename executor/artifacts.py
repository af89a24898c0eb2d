"""Artifacts: fetch (HTTP or a local directory), verify sha256 before anything else, extract safely.

Extraction goes into a temp directory next to the target and is renamed into place, so
`<root>/opt/obsplan/<component>/<version>/` either exists complete or not at all, and is never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import httpx
from obsplan.compiler.errors import EXIT_FAILED, ObsplanError
from obsplan.compiler.lock import Artifact

from .layout import fsync_dir

ARTIFACT_MARK = ".obsplan-artifact.sha256"
# what a truncated or garbled archive raises while being read (its sha256 may still match a broken upload)
CORRUPT_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError)
Advance = Callable[[int], None]


class ArtifactSource:
    """Where artifact bytes come from. `open_stream` yields (total size or None, chunk iterator)."""

    def fetch(self, artifact: Artifact, dest: Path, advance: Advance, on_total: Callable[[int | None], None]) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    def describe(self, artifact: Artifact) -> str:
        raise NotImplementedError  # pragma: no cover - interface


class HttpSource(ArtifactSource):
    """Downloads the artifact URL with one injected httpx client."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def describe(self, artifact: Artifact) -> str:
        return artifact.url

    def fetch(self, artifact: Artifact, dest: Path, advance: Advance, on_total: Callable[[int | None], None]) -> None:
        try:
            with self.client.stream("GET", artifact.url, follow_redirects=True, timeout=60) as resp:
                if resp.status_code != 200:
                    raise ObsplanError(f"download of {artifact.url} failed: HTTP {resp.status_code}",
                                       exit_code=EXIT_FAILED)  # fmt: skip
                length = resp.headers.get("content-length")
                on_total(int(length) if length and length.isdigit() else None)
                with open(dest, "wb") as fh:
                    for chunk in resp.iter_bytes(1 << 16):
                        fh.write(chunk)
                        advance(len(chunk))
                    fh.flush()
                    os.fsync(fh.fileno())
        except httpx.HTTPError as exc:
            raise ObsplanError(f"download of {artifact.url} failed: {exc}", exit_code=EXIT_FAILED) from None


class LocalDirSource(ArtifactSource):
    """`--artifacts DIR`: the artifact is looked up by its `filename` in a local directory (air-gapped hosts)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self, artifact: Artifact) -> str:
        return str(self.directory / artifact.filename)

    def fetch(self, artifact: Artifact, dest: Path, advance: Advance, on_total: Callable[[int | None], None]) -> None:
        src = self.directory / artifact.filename
        if not src.is_file():
            raise ObsplanError(f"artifact {artifact.filename} not found in {self.directory}",
                               hint="copy the release file there or drop --artifacts to download it",
                               exit_code=EXIT_FAILED)  # fmt: skip
        copy_with_progress(src, dest, advance, on_total)


def copy_with_progress(src: Path, dest: Path, advance: Advance, on_total: Callable[[int | None], None]) -> None:
    """Copy a local file (offline sources: a directory, a bundle), reporting progress, fsync'd."""
    on_total(src.stat().st_size)
    with open(src, "rb") as inp, open(dest, "wb") as out:
        for chunk in iter(lambda: inp.read(1 << 20), b""):
            out.write(chunk)
            advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ChecksumMismatch(ObsplanError):
    pass


def _download_part(artifact: Artifact, downloads: Path, source: ArtifactSource,
                   progress: Callable[[int | None], tuple[Advance, Callable[[], None]]]) -> Path:  # fmt: skip
    """Fetch into a per-process `.part` file (removed again if the fetch fails); the caller checks and renames it."""
    part = downloads / f".{artifact.filename}.part-{os.getpid()}"
    state: dict[str, Callable[..., None]] = {}

    def on_total(total: int | None) -> None:
        state["advance"], state["done"] = progress(total)

    try:
        source.fetch(artifact, part, lambda n: state.get("advance", lambda _n: None)(n), on_total)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        if "done" in state:
            state["done"]()
    return part


def ensure_download(artifact: Artifact, downloads: Path, source: ArtifactSource,
                    progress: Callable[[int | None], tuple[Advance, Callable[[], None]]]) -> tuple[Path, bool]:  # fmt: skip
    """Return (path of the verified file in the download cache, whether it was fetched now).

    A cached file is reused only when its sha256 matches the lock; a fresh download is written to a
    `.part` file and renamed only after its sha256 matched. A mismatch deletes the part and names both hashes.
    """
    assert artifact.sha256 is not None
    downloads.mkdir(parents=True, exist_ok=True)
    final = downloads / artifact.filename
    if final.is_file() and sha256_file(final) == artifact.sha256:
        return final, False
    part = _download_part(artifact, downloads, source, progress)
    actual = sha256_file(part)
    if actual != artifact.sha256:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"sha256 mismatch for {artifact.filename}: expected {artifact.sha256} (lock), got {actual} "
            f"(from {source.describe(artifact)}); nothing was installed",
            hint="the download is corrupt or tampered with; check the source, do not edit the lock",
            exit_code=EXIT_FAILED)  # fmt: skip
    os.replace(part, final)
    fsync_dir(downloads)
    return final, True


def fetch_unverified(artifact: Artifact, downloads: Path, source: ArtifactSource,
                     progress: Callable[[int | None], tuple[Advance, Callable[[], None]]]) -> tuple[Path, str]:  # fmt: skip
    """`--allow-unverified` only: fetch an artifact the lock has no sha256 for; returns (path, sha256 of the bytes).

    Always fetched again (a cached copy cannot be checked against anything); the caller records the digest.
    """
    downloads.mkdir(parents=True, exist_ok=True)
    final = downloads / artifact.filename
    part = _download_part(artifact, downloads, source, progress)
    actual = sha256_file(part)
    os.replace(part, final)
    fsync_dir(downloads)
    return final, actual


class UnsafeArchive(ObsplanError):
    pass


def _check_member_path(name: str, archive: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or name.startswith("/"):
        raise UnsafeArchive(f"{archive}: absolute path {name!r} in archive", exit_code=EXIT_FAILED)
    if ".." in p.parts:
        raise UnsafeArchive(f"{archive}: path {name!r} escapes the target directory", exit_code=EXIT_FAILED)
    return p


def _check_link(member_path: PurePosixPath, target: str, archive: str, hard: bool = False) -> None:
    if target.startswith("/"):
        raise UnsafeArchive(
            f"{archive}: link {str(member_path)!r} points to absolute {target!r}", exit_code=EXIT_FAILED
        )
    base = PurePosixPath() if hard else member_path.parent
    depth = 0
    for part in (base / target).parts:
        if part == "..":
            depth -= 1
        elif part not in (".", ""):
            depth += 1
        if depth < 0:
            raise UnsafeArchive(f"{archive}: link {str(member_path)!r} points outside ({target!r})",
                                exit_code=EXIT_FAILED)  # fmt: skip


def check_tar(tar: tarfile.TarFile, archive: str) -> None:
    for m in tar.getmembers():
        p = _check_member_path(m.name, archive)
        if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
            raise UnsafeArchive(f"{archive}: device or fifo {m.name!r} in archive", exit_code=EXIT_FAILED)
        if m.issym():
            _check_link(p, m.linkname, archive)
        elif m.islnk():
            _check_link(p, m.linkname, archive, hard=True)


def check_plain_tar(tar: tarfile.TarFile, archive: str) -> None:
    """Stricter than `check_tar`, for bundles: only regular files and directories, relative, inside the target."""
    for m in tar.getmembers():
        _check_member_path(m.name, archive)
        if not (m.isfile() or m.isdir()):
            kind = "link" if m.issym() or m.islnk() else "device or special file"
            raise UnsafeArchive(f"{archive}: {kind} {m.name!r} in a bundle (only regular files are allowed)",
                                exit_code=EXIT_FAILED)  # fmt: skip


def extract_archive(archive: Path, fmt: str, dest: Path, binary_name: str) -> None:
    """Extract `archive` into the (new, empty) directory `dest`, refusing unsafe members."""
    dest.mkdir(parents=True)
    if fmt == "tar.gz":
        with tarfile.open(archive, "r:gz") as tar:
            check_tar(tar, archive.name)
            tar.extractall(dest, filter="data")  # the data filter is a second line of defence
    elif fmt == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                p = _check_member_path(info.filename, archive.name)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    target = zf.read(info).decode()
                    _check_link(p, target, archive.name)
                    (dest / p).parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(target, dest / p)
                    continue
                if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise UnsafeArchive(f"{archive.name}: special file {info.filename!r}", exit_code=EXIT_FAILED)
                zf.extract(info, dest)
                if mode & 0o111 and not info.is_dir():
                    os.chmod(dest / p, 0o755)
    elif fmt == "binary":
        shutil.copyfile(archive, dest / binary_name)
        os.chmod(dest / binary_name, 0o755)
    else:  # pragma: no cover - the lock model restricts formats
        raise ObsplanError(f"unsupported artifact format {fmt!r}")


def ensure_extracted(archive: Path, artifact: Artifact, component_dir: Path, version: str, binary_name: str) -> bool:
    """Make `<component_dir>/<version>/` exist complete; returns True when it was extracted now.

    An existing directory is reused only if it came from the same artifact digest (never overwritten).
    """
    target = component_dir / version
    if target.is_dir():
        mark = target / ARTIFACT_MARK
        if mark.is_file() and mark.read_text().strip() != artifact.sha256:
            raise ObsplanError(f"{target} was installed from a different artifact (sha256 {mark.read_text().strip()})",
                               hint="versions are never overwritten; remove that directory by hand if intended",
                               exit_code=EXIT_FAILED)  # fmt: skip
        return False
    component_dir.mkdir(parents=True, exist_ok=True)
    for stale in component_dir.glob(".tmp-*"):  # left by a killed run (one apply per root at a time)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = component_dir / f".tmp-{version}-{os.getpid()}"
    try:
        extract_archive(archive, artifact.format, tmp, binary_name)
        (tmp / ARTIFACT_MARK).write_text(f"{artifact.sha256}\n")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(component_dir)
    return True


def find_binary(version_dir: Path, pattern: str) -> Path | None:
    """The file matching the catalog glob (e.g. `*/node_exporter`) inside an extracted version."""
    matches = sorted(p for p in version_dir.glob(pattern) if p.is_file())
    return matches[0] if matches else None
