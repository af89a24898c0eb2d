"""Artifacts: fetch (HTTP or a local directory), verify sha256 before anything else, extract safely.

Extraction goes into a temp directory next to the target and is renamed into place, so
`<root>/opt/obsplan/<component>/<version>/` either exists complete or not at all, and is never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from obsplan.executor.artifacts.safe_extract import UnsafeArchive, disk_full, extract, member_path
from obsplan.executor.host.layout import fsync_dir
from obsplan.executor.host.probes import pid_alive

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import ArchiveLimits, Artifact

ARTIFACT_MARK = ".obsplan-artifact.sha256"
READ_TIMEOUT = 60.0
Advance = Callable[[int], None]


class ArtifactSource:
    """Where artifact bytes come from: `fetch` writes an artifact's bytes to `dest` (reporting its total size, or
    None, to `on_total` first and each chunk's length to `advance`); `describe` names where they come from."""

    def fetch(self, artifact: Artifact, dest: Path, advance: Advance, on_total: Callable[[int | None], None]) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    def describe(self, artifact: Artifact) -> str:
        raise NotImplementedError  # pragma: no cover - interface


class DownloadDeadline(ObsplanError):
    reason = "download_deadline"


class HttpSource(ArtifactSource):
    """Downloads the artifact URL with one injected httpx client, abandoned after `deadline` seconds overall
    (a server trickling bytes is given up at the deadline, at the latest one read timeout after it)."""

    def __init__(self, client: httpx.Client, deadline: float | None = None) -> None:
        self.client = client
        self.deadline = deadline

    def describe(self, artifact: Artifact) -> str:
        return artifact.url

    def fetch(self, artifact: Artifact, dest: Path, advance: Advance, on_total: Callable[[int | None], None]) -> None:
        until = time.monotonic() + self.deadline if self.deadline else None
        timeout = min(READ_TIMEOUT, self.deadline) if self.deadline else READ_TIMEOUT
        try:
            with self.client.stream("GET", artifact.url, follow_redirects=True, timeout=timeout) as resp:
                if resp.status_code != 200:
                    raise ObsplanError(
                        f"download of {artifact.url} failed: HTTP {resp.status_code}", exit_code=EXIT_FAILED
                    )
                length = resp.headers.get("content-length")
                on_total(int(length) if length and length.isdigit() else None)
                with open(dest, "wb") as fh:
                    for chunk in resp.iter_bytes():  # as the bytes arrive, so the deadline is checked on a trickle
                        fh.write(chunk)
                        advance(len(chunk))
                        if until is not None and time.monotonic() > until:
                            raise self._late(artifact)
                    fh.flush()
                    os.fsync(fh.fileno())
        except httpx.TimeoutException as exc:
            if until is not None and time.monotonic() > until:
                raise self._late(artifact) from None
            raise ObsplanError(f"download of {artifact.url} failed: {exc}", exit_code=EXIT_FAILED) from None
        except httpx.HTTPError as exc:
            raise ObsplanError(f"download of {artifact.url} failed: {exc}", exit_code=EXIT_FAILED) from None

    def _late(self, artifact: Artifact) -> DownloadDeadline:
        return DownloadDeadline(
            f"download of {artifact.url} abandoned: not complete within {self.deadline:g} s",
            hint="download_deadline_seconds in upgrade-policy.yaml, or use --artifacts/--bundle",
            exit_code=EXIT_FAILED,
        )


class LocalDirSource(ArtifactSource):
    """`--artifacts DIR`: the artifact is looked up by its `filename` in a local directory (air-gapped hosts)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self, artifact: Artifact) -> str:
        return str(self.directory / artifact.filename)

    def fetch(self, artifact: Artifact, dest: Path, advance: Advance, on_total: Callable[[int | None], None]) -> None:
        src = self.directory / artifact.filename
        if not src.is_file():
            raise ObsplanError(
                f"artifact {artifact.filename} not found in {self.directory}",
                hint="copy the release file there or drop --artifacts to download it",
                exit_code=EXIT_FAILED,
            )
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


def clean_stale_parts(downloads: Path) -> list[str]:
    """Remove `.<file>.part-<pid>` files whose process is gone (killed downloads); returns their names."""
    removed = []
    for part in sorted(downloads.glob(".*.part-*")) if downloads.is_dir() else []:
        pid = part.name.rsplit(".part-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            part.unlink(missing_ok=True)
            removed.append(part.name)
    return removed


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ChecksumMismatch(ObsplanError):
    pass


class DownloadTooLarge(ObsplanError):
    reason = "download_too_large"


def download_cap(artifact: Artifact, max_bytes: int | None) -> int:
    """Bytes a download of `artifact` may take: its size in the lock when known, else the archive limit."""
    if artifact.size is not None:
        return artifact.size
    return max_bytes if max_bytes is not None else ArchiveLimits().max_total_bytes


class ByteCap:
    """Stops a download of `artifact` past `cap` bytes: on the announced length, and as the bytes arrive (never
    more than one chunk past the cap on disk, and before anything is hashed)."""

    def __init__(self, artifact: Artifact, cap: int) -> None:
        self.artifact, self.cap, self.got = artifact, cap, 0

    def announce(self, total: int | None) -> None:
        if total is not None and total > self.cap:
            raise self._too_large(f"announced as {total} bytes")

    def advance(self, n: int) -> None:
        self.got += n
        if self.got > self.cap:
            raise self._too_large(f"more than {self.cap} bytes arrived")

    def _too_large(self, what: str) -> DownloadTooLarge:
        return DownloadTooLarge(
            f"download of {self.artifact.filename} stopped: {what}, more than the {self.cap} allowed; "
            "nothing was installed",
            hint="the lock's artifact size, or archive_limits.max_total_bytes in upgrade-policy.yaml",
            exit_code=EXIT_FAILED,
        )


def _download_part(
    artifact: Artifact,
    downloads: Path,
    source: ArtifactSource,
    progress: Callable[[int | None], tuple[Advance, Callable[[], None]]],
    max_bytes: int | None = None,
) -> Path:
    """Fetch into a per-process `.part` file (removed again if the fetch fails); the caller checks and renames it."""
    part = downloads / f".{artifact.filename}.part-{os.getpid()}"
    state: dict[str, Callable[..., None]] = {}
    cap = ByteCap(artifact, download_cap(artifact, max_bytes))

    def on_total(total: int | None) -> None:
        cap.announce(total)
        state["advance"], state["done"] = progress(total)

    def advance(n: int) -> None:
        cap.advance(n)
        state.get("advance", lambda _n: None)(n)

    try:
        source.fetch(artifact, part, advance, on_total)
    except OSError as exc:
        part.unlink(missing_ok=True)
        full = disk_full(exc, f"downloading {artifact.filename}")
        if full is None:
            raise
        raise full from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        if "done" in state:
            state["done"]()
    return part


def ensure_download(
    artifact: Artifact,
    downloads: Path,
    source: ArtifactSource,
    progress: Callable[[int | None], tuple[Advance, Callable[[], None]]],
    max_bytes: int | None = None,
) -> tuple[Path, bool]:
    """Return (path of the verified file in the download cache, whether it was fetched now).

    A cached file is reused only when its sha256 matches the lock; a fresh download is written to a
    `.part` file and renamed only after its sha256 matched. A mismatch deletes the part and names both hashes.
    """
    assert artifact.sha256 is not None
    downloads.mkdir(parents=True, exist_ok=True)
    final = downloads / artifact.filename
    cached = final.is_file() and final.stat().st_size <= download_cap(artifact, max_bytes)  # capped before hashing
    if cached and sha256_file(final) == artifact.sha256:
        return final, False
    part = _download_part(artifact, downloads, source, progress, max_bytes)
    actual = sha256_file(part)
    if actual != artifact.sha256:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"sha256 mismatch for {artifact.filename}: expected {artifact.sha256} (lock), got {actual} "
            f"(from {source.describe(artifact)}); nothing was installed",
            hint="the download is corrupt or tampered with; check the source, do not edit the lock",
            exit_code=EXIT_FAILED,
        )
    os.replace(part, final)
    fsync_dir(downloads)
    return final, True


def fetch_unverified(
    artifact: Artifact,
    downloads: Path,
    source: ArtifactSource,
    progress: Callable[[int | None], tuple[Advance, Callable[[], None]]],
    max_bytes: int | None = None,
) -> tuple[Path, str]:
    """`--allow-unverified` only: fetch an artifact the lock has no sha256 for; returns (path, sha256 of the bytes).

    Always fetched again (a cached copy cannot be checked against anything); the caller records the digest.
    """
    downloads.mkdir(parents=True, exist_ok=True)
    final = downloads / artifact.filename
    part = _download_part(artifact, downloads, source, progress, max_bytes)
    actual = sha256_file(part)
    os.replace(part, final)
    fsync_dir(downloads)
    return final, actual


def check_plain_member(m: tarfile.TarInfo, archive: str) -> None:
    """For bundles: only regular (not sparse) files and directories, relative, inside the target."""
    member_path(m.name, archive)
    if not (m.isfile() or m.isdir()) or m.issparse():
        kind = "link" if m.issym() or m.islnk() else "sparse file" if m.issparse() else "device or special file"
        raise UnsafeArchive(
            f"{archive}: {kind} {m.name[:200]!r} in a bundle (only regular files are allowed)", exit_code=EXIT_FAILED
        )


def extract_archive(archive: Path, fmt: str, dest: Path, binary_name: str, limits: ArchiveLimits | None = None) -> None:
    """Extract `archive` into the (new, empty) directory `dest`, refusing unsafe members (see `extract`)."""
    dest.mkdir(parents=True)
    if fmt == "binary":
        try:
            shutil.copyfile(archive, dest / binary_name)
        except OSError as exc:
            full = disk_full(exc, f"copying {archive.name}")
            if full is None:
                raise
            raise full from None
        os.chmod(dest / binary_name, 0o755)
    elif fmt in ("tar.gz", "zip"):
        extract(archive, fmt, dest, limits or ArchiveLimits())
    else:  # pragma: no cover - the lock model restricts formats
        raise ObsplanError(f"unsupported artifact format {fmt!r}")


def ensure_extracted(
    archive: Path,
    artifact: Artifact,
    component_dir: Path,
    version: str,
    binary_name: str,
    limits: ArchiveLimits | None = None,
) -> bool:
    """Make `<component_dir>/<version>/` exist complete; returns True when it was extracted now.

    An existing directory is reused only if it came from the same artifact digest (never overwritten).
    """
    target = component_dir / version
    if target.is_dir():
        mark = target / ARTIFACT_MARK
        if mark.is_file() and mark.read_text().strip() != artifact.sha256:
            raise ObsplanError(
                f"{target} was installed from a different artifact (sha256 {mark.read_text().strip()})",
                hint="versions are never overwritten; remove that directory by hand if intended",
                exit_code=EXIT_FAILED,
            )
        return False
    component_dir.mkdir(parents=True, exist_ok=True)
    for stale in component_dir.glob(".tmp-*"):  # left by a killed run (one apply per root at a time)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = component_dir / f".tmp-{version}-{os.getpid()}"
    try:
        extract_archive(archive, artifact.format, tmp, binary_name, limits)
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
