"""`manifest.json`: each file of a bundle with its kind, URL, sha256, size and the lock entries that need it,
rendered deterministically (no clock, no host facts) so rebuilding a bundle gives the same bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from obsplan.executor.bundle.files import LOCK_NAME, MANIFEST_NAME
from obsplan.executor.bundle.wanted import Wanted

import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Lock

BUNDLE_FORMAT = 1


def render_manifest(
    lock: Lock, lock_bytes: bytes, platforms: list[str], wanted: dict[str, Wanted], records: dict[str, tuple[str, int]]
) -> bytes:
    """Deterministic bytes: `records` maps each present file to (sha256, size); no clock, no host facts."""
    files = {path: _file_entry(w, records) for path, w in sorted(wanted.items()) if path in records}
    data = {
        "bundle_format": BUNDLE_FORMAT,
        "lock": {
            "path": LOCK_NAME,
            "sha256": hashlib.sha256(lock_bytes).hexdigest(),
            "size": len(lock_bytes),
            "content_sha256": lock.content_sha256,
            "environment": lock.environment,
            "obsplan_version": lock.obsplan_version,
        },
        "platforms": sorted(platforms),
        "files": files,
        "unverified": sorted(
            p for p, w in wanted.items() if w.kind == "artifact" and w.sha256 is None and p in records
        ),
    }
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _file_entry(w: Wanted, records: dict[str, tuple[str, int]]) -> dict[str, Any]:
    sha, size = records[w.path]
    entry: dict[str, Any] = {"kind": w.kind, "sha256": sha, "size": size, "needed_by": sorted(w.needed_by)}
    if w.kind == "artifact":
        assert w.artifact is not None
        entry.update(
            url=w.url,
            filename=w.artifact.filename,
            verified=w.sha256 is not None,
            checksum_file=w.checksum_path if w.checksum_path in records else None,
        )
    elif w.kind == "checksum_file":
        entry.update(url=w.url, vouches_for=sorted(w.vouches_for))
    return entry


def previous_records(directory: Path) -> dict[str, Any]:
    """The file records of the manifest a previous build left (none when it is missing or unreadable)."""
    try:
        return jsonload.read(directory / MANIFEST_NAME, MANIFEST_NAME).get("files", {})
    except (OSError, ObsplanError, AttributeError):
        return {}
