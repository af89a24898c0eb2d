"""`obsplan bundle LOCK -o DIR|FILE.tar`: download exactly what a reviewed lock names, verified against it.

Every write is a temp file renamed into place; `manifest.json` is removed first and written last, so an
interrupted build leaves no file that looks complete and no manifest claiming it is. A re-run keeps the files
already present with the right sha256 (re-hashed, never trusted by name) and downloads only the rest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import obsplan.executor.artifacts.store as art
from obsplan.executor.bundle.download import LazyClient, download, get_bytes
from obsplan.executor.bundle.evidence import checksum_problems
from obsplan.executor.bundle.files import LOCK_NAME, MANIFEST_NAME, TMP_MARK, is_bundle_dir, walk_files
from obsplan.executor.bundle.manifest import previous_records, render_manifest
from obsplan.executor.bundle.result import BundleFile, BundleResult
from obsplan.executor.bundle.tarball import extract_tar, write_tar
from obsplan.executor.bundle.wanted import Wanted, wanted_files
from obsplan.executor.reporters import Event, Reporter

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import Lock
from obsplan.lock.read import LockFile, open_lock
from obsplan.safeio.fsio import fsync_dir, write_atomic


def build_bundle(
    lock_path: Path | LockFile,
    output: Path,
    platforms: list[str] | None = None,
    *,
    allow_unverified: bool = False,
    client: httpx.Client | None = None,
    reporter: Reporter | None = None,
    then: Callable[[Path], None] | None = None,
) -> BundleResult:
    """Download exactly what `lock_path` names into `output` (a directory, or a plain tar when it ends in .tar);
    `then(directory)` adds to the bundle directory before it is tarred (the wheelhouse of --with-obsplan).

    Idempotent: files already present with the right sha256 are kept (re-hashed, never trusted by name).
    Refuses (fail closed) artifacts without a sha256 in the lock unless `allow_unverified`.
    """
    opened = lock_path if isinstance(lock_path, LockFile) else open_lock(lock_path)
    lock, lock_path, lock_bytes = opened.lock, opened.path, opened.data  # read once, signature checked on these
    chosen = _choose_platforms(lock, platforms)
    wanted = wanted_files(lock, chosen)
    if not allow_unverified and lock.host_policy.require_checksum_verification:
        _refuse_unverified(lock_path, wanted)
    clients = LazyClient(client)

    def build_into(directory: Path) -> BundleResult:
        result = _DirBuild(lock, lock_bytes, chosen, wanted, clients, reporter, directory).run()
        if then is not None:
            then(directory)
        return result

    try:
        return _build_tar(build_into, output) if output.suffix == ".tar" else build_into(output)
    finally:
        clients.close()


def _choose_platforms(lock: Lock, platforms: list[str] | None) -> list[str]:
    if not platforms:
        return sorted(lock.platforms)
    unknown = sorted(set(platforms) - set(lock.platforms))
    if unknown:
        raise ObsplanError(
            f"the lock has no artifacts for {', '.join(unknown)}",
            key="--platform",
            hint=f"the lock covers {', '.join(lock.platforms)}",
        )
    return sorted(set(platforms))


def _refuse_unverified(lock_path: Path, wanted: dict[str, Wanted]) -> None:
    """Fail closed on artifacts the lock has no sha256 for (exit 1), naming the first five."""
    unverified = sorted(p for p, w in wanted.items() if w.kind == "artifact" and w.sha256 is None)
    if not unverified:
        return
    names = ", ".join(wanted[p].artifact.filename for p in unverified[:5])  # type: ignore[union-attr]
    names += f" and {len(unverified) - 5} more" if len(unverified) > 5 else ""
    raise ObsplanError(
        f"refusing to bundle {len(unverified)} artifact(s) the lock has no sha256 for: {names}",
        file=str(lock_path),
        key="sha256",
        hint="re-run 'obsplan plan' when the upstream checksums can be fetched; "
        "--allow-unverified bundles them anyway (flagged in the manifest)",
        exit_code=EXIT_FAILED,
    )


def _build_tar(build_into: Callable[[Path], BundleResult], output: Path) -> BundleResult:
    """Build in a staging directory beside `output` (seeded from the tar a previous run wrote), then tar it."""
    if output.exists() and not output.is_file():
        raise ObsplanError(f"{output} exists and is not a file", key="-o")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}{TMP_MARK}", dir=output.parent))
    try:
        if output.is_file():  # a re-run: start from what the tar already holds, download only the rest
            try:
                extract_tar(output, staging / "b")
            except ObsplanError:
                shutil.rmtree(staging / "b", ignore_errors=True)
        result = build_into(staging / "b")
        write_tar(staging / "b", output)
        result.output = output
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare_dir(directory: Path) -> None:
    """`directory` exists afterwards, and is new, empty or a bundle (of any lock: stale files are removed)."""
    if directory.exists() and not directory.is_dir():
        raise ObsplanError(f"{directory} exists and is not a directory", key="-o")
    if directory.is_dir() and any(directory.iterdir()) and not is_bundle_dir(directory):
        raise ObsplanError(
            f"{directory} is not empty and is not a bundle", key="-o", hint="bundle into a new or empty directory"
        )
    directory.mkdir(parents=True, exist_ok=True)


@dataclass
class _DirBuild:
    """One build into a directory, in order: drop the manifest and stale files, place the lock, fetch the
    checksum files (a disagreement with the lock stops the build before large downloads), fetch the
    artifacts, check unverified artifacts against the checksum files, write the manifest."""

    lock: Lock
    lock_bytes: bytes
    chosen: list[str]
    wanted: dict[str, Wanted]
    clients: LazyClient
    reporter: Reporter | None
    directory: Path
    result: BundleResult = field(init=False)
    records: dict[str, tuple[str, int]] = field(default_factory=dict)  # (sha256, size) of each file in place
    actual: dict[str, str] = field(default_factory=dict)  # sha256 of each artifact in place

    def __post_init__(self) -> None:
        self.result = BundleResult(self.directory, self.directory, self.chosen, self.lock.content_sha256)

    def run(self) -> BundleResult:
        _prepare_dir(self.directory)
        previous = self._start()
        self._place_lock()
        texts: dict[str, str] = {}
        for path, w in sorted(self.wanted.items()):
            text = self._checksum_file(path, w) if w.kind == "checksum_file" else None
            if text is not None:
                texts[path] = text
        for path, w in sorted(self.wanted.items()):
            if w.kind == "artifact":
                self._artifact(path, w, previous)
        for cpath, text in texts.items():  # unverified artifacts against a checksum file published since
            problems = checksum_problems(text, self.wanted, self.wanted[cpath], self.actual)
            if problems:
                raise ObsplanError(
                    f"upstream checksum file disagrees with the bundled file: {'; '.join(problems)}",
                    key="sha256",
                    exit_code=EXIT_FAILED,
                )
        manifest = render_manifest(self.lock, self.lock_bytes, self.chosen, self.wanted, self.records)
        write_atomic(self.directory / MANIFEST_NAME, manifest)
        self.result.files.append(BundleFile(MANIFEST_NAME, "manifest", "written"))
        return self.result

    def _emit(self, event: str, **meta: Any) -> None:
        if self.reporter is not None:
            self.reporter.emit(Event(None, event, meta))

    def _start(self) -> dict[str, Any]:
        """Previous records of files the lock cannot vouch for (unverified artifacts); then the manifest is
        dropped (from here until the end, the bundle does not look complete) and stale files removed."""
        previous = previous_records(self.directory)
        (self.directory / MANIFEST_NAME).unlink(missing_ok=True)
        fsync_dir(self.directory)
        for rel, found in list(walk_files(self.directory)):  # temp files of an interrupted build; unneeded files
            owned = rel.startswith(("artifacts/", "checksums/"))
            if TMP_MARK in found.name or (owned and rel not in self.wanted):
                found.unlink()
                self.result.files.append(BundleFile(rel, "stale", "removed"))
                self._emit("bundle_file", path=rel, status="removed")
        return previous

    def _place_lock(self) -> None:
        dest = self.directory / LOCK_NAME
        if dest.is_file() and dest.read_bytes() == self.lock_bytes:
            self.result.files.append(BundleFile(LOCK_NAME, "lock", "present", len(self.lock_bytes)))
        else:
            write_atomic(dest, self.lock_bytes)
            self.result.files.append(BundleFile(LOCK_NAME, "lock", "written", len(self.lock_bytes)))
        self.records[LOCK_NAME] = (hashlib.sha256(self.lock_bytes).hexdigest(), len(self.lock_bytes))

    def _checksum_file(self, path: str, w: Wanted) -> str | None:
        """A checksum file kept (when it agrees with the lock) or fetched; its text, or None when it cannot be
        had for artifacts that are unverified anyway."""
        dest = self.directory / path
        status = "present"
        text = dest.read_text(errors="replace") if dest.is_file() else None
        if text is None or checksum_problems(text, self.wanted, w, {}):
            data = self._fetch_checksum_file(w)
            if data is None:
                return None
            text = data.decode(errors="replace")
            status = "replaced" if dest.exists() else "downloaded"
            write_atomic(dest, data)
        self.records[path] = (art.sha256_file(dest), dest.stat().st_size)
        self.result.files.append(
            BundleFile(path, "checksum_file", status, self.records[path][1], self.records[path][0])
        )
        self._emit("bundle_file", path=path, status=status)
        return text

    def _fetch_checksum_file(self, w: Wanted) -> bytes | None:
        """The checksum file from upstream; None (with a warning) when it cannot be had but vouches only for
        unverified artifacts. Refuses (exit 1) one that disagrees with the lock."""
        only_unverified = all(self.wanted[a].sha256 is None for a in w.vouches_for)
        try:
            data = get_bytes(self.clients.get(), w.url)
        except ObsplanError as exc:
            if not only_unverified:
                raise
            msg = f"no upstream checksum file for unverified {', '.join(w.vouches_for)}: {exc.message}"
            self.result.warnings.append(msg)
            self._emit("warning", code="checksum_file_unavailable", message=msg)
            return None
        problems = checksum_problems(data.decode(errors="replace"), self.wanted, w, {})
        if problems and not only_unverified:
            raise ObsplanError(
                f"upstream checksum file disagrees with the lock: {'; '.join(problems)}",
                key="sha256",
                hint="the release was changed after the lock was reviewed, or the "
                "download is tampered with; do not bundle it",
                exit_code=EXIT_FAILED,
            )
        return data

    def _artifact(self, path: str, w: Wanted, previous: dict[str, Any]) -> None:
        """An artifact kept (its bytes have the lock's sha256, or for an unverified one the previous build's)
        or downloaded, flagged when the lock has no sha256 for it."""
        assert w.artifact is not None
        dest = self.directory / path
        expected = w.sha256 or (previous.get(path) or {}).get("sha256")
        status = "present"
        have = art.sha256_file(dest) if dest.is_file() else None
        if have is None or have != expected:
            status = "downloaded" if have is None else "replaced"
            have = self._download(w, dest)
        self.actual[path] = have
        self.records[path] = (have, dest.stat().st_size)
        size = self.records[path][1]
        self.result.files.append(BundleFile(path, "artifact", status, size, have, w.sha256 is not None))
        self._emit("bundle_file", path=path, status=status, size=size)
        if w.sha256 is None:
            msg = (
                f"UNVERIFIED: {w.artifact.filename} (sha256 {have}) is bundled although the lock has no sha256 "
                "for it (--allow-unverified); nothing proves these are the reviewed bytes"
            )
            self.result.warnings.append(msg)
            self._emit("warning", code="unverified_artifact", path=path, sha256=have, message=msg)

    def _download(self, w: Wanted, dest: Path) -> str:
        """Download into place, refusing (exit 1) bytes other than the lock's; returns their sha256."""
        assert w.artifact is not None
        source = art.HttpSource(self.clients.get(), self.lock.host_policy.download_deadline_seconds)
        tmp, have = download(source, w.artifact, dest)
        if w.sha256 is not None and have != w.sha256:
            tmp.unlink(missing_ok=True)
            raise art.ChecksumMismatch(
                f"sha256 mismatch for {w.url}: expected {w.sha256} (lock), got {have}; not bundled",
                hint="the download is corrupt or the release was changed; do not edit the lock",
                exit_code=EXIT_FAILED,
            )
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
        return have
