"""`obsplan bundle --verify`: re-check every file of a bundle against the lock inside it (not against the
manifest, which is checked too), listing every problem instead of stopping at the first."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import obsplan.executor.artifacts.store as art
from obsplan.executor.bundle.evidence import checksum_problems
from obsplan.executor.bundle.files import LOCK_NAME, MANIFEST_NAME, TMP_MARK, walk_files
from obsplan.executor.bundle.manifest import render_manifest
from obsplan.executor.bundle.wanted import Wanted, wanted_files

import obsplan.lock.wheelhouse as wheelhouse
import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Lock, parse_lock
from obsplan.lock.raw_bytes import read_lock_bytes


@dataclass
class Problem:
    path: str
    problem: str  # missing | extra | altered | truncated | disagrees | unexpected_type
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem} ({self.detail})"

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class VerifyResult:
    directory: Path
    lock: Lock | None
    platforms: list[str]
    files_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "files_checked": self.files_checked,
            "lock_sha256": self.lock.content_sha256 if self.lock else None,
            "platforms": self.platforms,
            "problems": [p.to_dict() for p in self.problems],
            "unverified": self.unverified,
        }


def verify_bundle(directory: Path, lock_data: bytes | None = None) -> VerifyResult:
    """Re-check every file of a bundle against the lock inside it. Raises ObsplanError (exit 2) for a lock
    edited after it was generated; every other problem is listed in the result. The bundle's lock is read once
    (or given as `lock_data`, the bytes the caller already compared): the files are checked against those."""
    lock_file = _lock_file(directory)
    if lock_file is None:
        result = VerifyResult(directory, None, [])
        result.problems.append(Problem(LOCK_NAME, "missing", "the bundle holds no lock; nothing can be verified"))
        return result
    lock_bytes = read_lock_bytes(lock_file) if lock_data is None else lock_data
    lock = parse_lock(lock_bytes, str(lock_file))
    manifest, problem = _read_manifest(directory / MANIFEST_NAME)
    result = VerifyResult(directory, lock, _platforms(manifest, lock), problems=[problem] if problem else [])
    result.problems += _lock_problems(manifest, lock_bytes)
    wanted = wanted_files(lock, result.platforms)
    present = dict(walk_files(directory))
    check = _FileCheck(wanted, manifest, result, {LOCK_NAME: (hashlib.sha256(lock_bytes).hexdigest(), len(lock_bytes))})
    for path, w in sorted(wanted.items()):
        if w.kind != "lock":
            check.file(path, w, present.get(path))
    for path, text in check.texts.items():
        for msg in checksum_problems(text, wanted, wanted[path], check.actual):
            result.problems.append(Problem(path, "disagrees", msg))
    result.problems += [Problem(*p) for p in wheelhouse.problems(present)]
    result.problems += _extra_files(
        {r: p for r, p in present.items() if not r.startswith(wheelhouse.DIR + "/")}, wanted
    )
    # everything else checks out: the manifest must then be exactly what these files give
    if manifest and not result.problems:
        rendered = render_manifest(lock, lock_bytes, result.platforms, wanted, check.records)
        if rendered != (directory / MANIFEST_NAME).read_bytes():
            result.problems.append(Problem(MANIFEST_NAME, "altered", "does not match what the lock and the files give"))
    return result


def _lock_file(directory: Path) -> Path | None:
    """The bundle's lock file, or None when it holds none (or a link in its place)."""
    if not directory.is_dir():
        raise ObsplanError(
            f"{directory} is not a directory",
            key="--verify",
            hint="a tar bundle is checked with 'obsplan bundle --extract FILE.tar -o DIR'",
        )
    lock_file = directory / LOCK_NAME
    return None if not lock_file.is_file() or lock_file.is_symlink() else lock_file


def _read_manifest(manifest_file: Path) -> tuple[dict[str, Any], Problem | None]:
    """The manifest (empty when there is none to trust) and the problem with it, if any."""
    if not manifest_file.is_file():
        return {}, Problem(MANIFEST_NAME, "missing", "an interrupted or incomplete bundle; re-run obsplan bundle")
    try:  # oversized, too deep, non-UTF-8 or duplicate keys: ObsplanError, exit 2 (obsplan/safeio/jsonload.py)
        manifest = jsonload.read(manifest_file, "bundle manifest", hint="rebuild the bundle with 'obsplan bundle'")
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no files map")
    except ValueError as exc:
        return {}, Problem(MANIFEST_NAME, "altered", f"not a bundle manifest: {exc}")
    return manifest, None


def _platforms(manifest: dict[str, Any], lock: Lock) -> list[str]:
    """The platforms the manifest says were bundled, when the lock covers them all; else all of the lock's."""
    platforms = manifest.get("platforms") if isinstance(manifest.get("platforms"), list) else None
    if not platforms or not set(platforms) <= set(lock.platforms):
        return sorted(lock.platforms)
    return platforms


def _lock_problems(manifest: dict[str, Any], lock_bytes: bytes) -> list[Problem]:
    recorded = (manifest.get("lock") or {}).get("sha256") if manifest else None
    if not manifest or recorded == hashlib.sha256(lock_bytes).hexdigest():
        return []
    detail = f"not the lock the bundle was built from (manifest records sha256 {recorded})"
    return [Problem(LOCK_NAME, "altered", detail)]


def _size_problem(path: str, actual_size: int, size: int | None, sha: str, expected: str, against: str) -> Problem:
    if size is not None and actual_size < size:
        return Problem(path, "truncated", f"{actual_size} of {size} bytes")
    return Problem(path, "altered", f"sha256 {sha}, {against} says {expected}")


@dataclass
class _FileCheck:
    """Each wanted file against the lock (artifacts it has a sha256 for) or the manifest (everything else)."""

    wanted: dict[str, Wanted]
    manifest: dict[str, Any]
    result: VerifyResult
    records: dict[str, tuple[str, int]]  # what the present files give: (sha256, size) by path
    actual: dict[str, str] = field(default_factory=dict)  # sha256 by path
    texts: dict[str, str] = field(default_factory=dict)  # checksum files to check against the lock afterwards

    def file(self, path: str, w: Wanted, p: Path | None) -> None:
        recorded = self.manifest.get("files", {}).get(path)
        rec = recorded if isinstance(recorded, dict) else None
        if p is None:
            optional = w.kind == "checksum_file" and all(self.wanted[a].sha256 is None for a in w.vouches_for)
            if not (optional and rec is None and self.manifest):
                self._problem(path, "missing", f"needed by {', '.join(sorted(w.needed_by)[:3])}")
            return
        if p.is_symlink() or not p.is_file():
            self._problem(path, "unexpected_type", "a link or special file where a file belongs")
            return
        self.result.files_checked += 1
        sha, size = art.sha256_file(p), p.stat().st_size
        self.records[path], self.actual[path] = (sha, size), sha
        if w.kind == "artifact" and w.sha256 is not None:
            self._against_lock(path, w.sha256, sha, size, rec)
            return
        if w.kind == "checksum_file":
            self.texts[path] = p.read_text(errors="replace")  # checked against the lock afterwards
        self._against_manifest(path, w, sha, size, rec)

    def _against_lock(self, path: str, expected: str, sha: str, size: int, rec: dict[str, Any] | None) -> None:
        if sha != expected:
            self.result.problems.append(
                _size_problem(path, size, rec.get("size") if rec else None, sha, expected, "the lock")
            )
        elif rec is not None and rec.get("sha256") != expected:
            self._problem(MANIFEST_NAME, "altered", f"records {path} with another sha256 than the lock")

    def _against_manifest(self, path: str, w: Wanted, sha: str, size: int, rec: dict[str, Any] | None) -> None:
        if rec is None or not rec.get("sha256"):
            if self.manifest:
                self._problem(MANIFEST_NAME, "altered", f"has no record of {path}")
            return
        if sha != rec["sha256"]:
            self.result.problems.append(_size_problem(path, size, rec.get("size"), sha, rec["sha256"], "the manifest"))
            self.texts.pop(path, None)
        elif w.kind == "artifact":
            self.result.unverified.append(path)

    def _problem(self, path: str, problem: str, detail: str) -> None:
        self.result.problems.append(Problem(path, problem, detail))


def _extra_files(present: dict[str, Path], wanted: dict[str, Wanted]) -> list[Problem]:
    expected = set(wanted) | {MANIFEST_NAME}
    problems = []
    for rel, p in sorted(present.items()):
        if rel not in expected:
            interrupted = TMP_MARK in p.name or p.name.endswith(".part")
            problems.append(
                Problem(rel, "extra", "a temp file of an interrupted build" if interrupted else "not named by the lock")
            )
    return problems
