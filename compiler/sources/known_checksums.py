"""Checksums are content facts: a sha256 learned once for (component, version, platform, file name) is reused
wherever it is known, so an offline plan is as verified as the online plan that learned it.

Sources, in order: the promoted environment's lock (`promote_from`), the other locks of the plans folder
(the `-o` directory and `plans/`), the embedded snapshot's `checksums`. Upstream checksum files in the HTTP
cache (`http_cache.py`, immutable entries) are consulted before any of them by the checksum fetcher itself. Only
checksums a lock recorded as `verified_upstream` are learned, and only from locks whose content hash holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Artifact, Lock, load_lock

Key = tuple[str, str, str]  # component, version, platform


@dataclass(frozen=True)
class Known:
    filename: str
    sha256: str
    checksum_url: str | None
    origin: str


@dataclass
class ChecksumBook:
    entries: dict[Key, Known] = field(default_factory=dict)

    def learn(self, key: Key, art: Artifact, origin: str) -> None:
        if art.sha256 and art.checksum_status == "verified_upstream" and key not in self.entries:
            self.entries[key] = Known(art.filename, art.sha256, art.checksum_url, art.checksum_origin or origin)

    def learn_lock(self, lock: Lock, origin: str) -> None:
        for name, comp in sorted(lock.components.items()):
            for platform, art in sorted(comp.artifacts.items()):
                self.learn((name, comp.version, platform), art, origin)
        for step in lock.plan.steps:
            for platform, art in sorted(step.artifacts.items()):
                self.learn((step.component, step.to_version, platform), art, origin)

    def learn_snapshot(self, checksums: dict[str, Any], origin: str) -> None:
        """`{component: {version: {platform: {filename, sha256, checksum_url?}}}}` of a snapshot file."""
        for name, versions in sorted(checksums.items()):
            for version, platforms in sorted(versions.items()):
                for platform, e in sorted(platforms.items()):
                    key = (name, version, platform)
                    if key not in self.entries:
                        self.entries[key] = Known(e["filename"], e["sha256"], e.get("checksum_url"), origin)

    def lookup(self, component: str, version: str, platform: str, filename: str) -> Known | None:
        """The learned sha256 of exactly this file (a different file name is a different artifact)."""
        known = self.entries.get((component, version, platform))
        return known if known is not None and known.filename == filename else None


@dataclass(frozen=True)
class FolderLock:
    path: Path
    lock: Lock

    @property
    def origin(self) -> str:
        return f"{self.path.name} (environment {self.lock.environment})"


def folder_locks(dirs: list[Path], skip: Path | None = None, read: dict[Path, Lock] | None = None) -> list[FolderLock]:
    """Every readable, untampered lock in these folders (each folder once, sorted by name); `skip` excluded.
    `read`: locks already read (unverified) by resolved path, checked here instead of read again."""
    seen: set[Path] = set()
    out: list[FolderLock] = []
    for d in dirs:
        rd = d.resolve()
        if rd in seen or not rd.is_dir():
            continue
        seen.add(rd)
        for p in sorted(rd.glob("*.lock")):
            if skip is not None and p.resolve() == skip.resolve():
                continue
            known = (read or {}).get(p.resolve())
            if known is not None:
                if known.content_sha256 == known.body_digest():
                    out.append(FolderLock(p, known))
                continue
            try:
                out.append(FolderLock(p, load_lock(p, verify=True)))
            except ObsplanError:
                continue  # a hand-edited or foreign lock teaches nothing
    return out


def snapshot_checksums(book: ChecksumBook) -> dict[str, Any]:
    """The book as a snapshot's `checksums` section: component → version → platform → {filename, sha256, ...}."""
    out: dict[str, Any] = {}
    for (name, version, platform), k in sorted(book.entries.items()):
        entry = {"filename": k.filename, "sha256": k.sha256}
        if k.checksum_url:
            entry["checksum_url"] = k.checksum_url
        out.setdefault(name, {}).setdefault(version, {})[platform] = entry
    return out
