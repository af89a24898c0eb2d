"""Reading a lock of any format: the bytes once (`obsplan/lock/raw_bytes.py`), the JSON parsed with its limits
(`jsonload`), the format checked, the content hash compared with the document as written, the format's
reader (`obsplan/lock/formats.py`) into today's model, the graph checked (`obsplan/lock/invariants.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import obsplan.safeio.jsonload as jsonload
from obsplan import __version__
from obsplan.kernel.errors import ObsplanError
from obsplan.lock.formats import FORMAT_VERSION, FORMATS
from obsplan.lock.invariants import check_lock
from obsplan.lock.lockfile import Lock, ReadInfo, content_digest
from obsplan.lock.raw_bytes import read_lock_bytes

_HINT = "regenerate it with 'obsplan plan'"


@dataclass(frozen=True)
class LockFile:
    """A lock read once: its path (for messages), its exact bytes, the lock parsed from those bytes, and the
    principal whose signature over those bytes was verified (None: no signature was asked for)."""

    path: Path
    data: bytes
    lock: Lock
    signer: str | None = None


def open_lock(path: Path, allowed_signers: Path | None = None, verify: bool = True) -> LockFile:
    """Read `path` once; with `allowed_signers`, verify the signature over those bytes; parse those bytes."""
    data = read_lock_bytes(path)
    signer = None
    if allowed_signers is not None:
        import obsplan.lock.signing as signing

        signer = signing.verify(path, allowed_signers, data)
    return LockFile(path, data, parse(data, str(path), verify), signer)


def read_lock(path: Path, verify: bool = True) -> Lock:
    return parse(read_lock_bytes(path), str(path), verify)


def parse(data: bytes, where: str, verify: bool = True) -> Lock:
    return _validated(jsonload.loads(data, where, "lock", hint=_HINT), where, verify)


def _validated(raw: Any, where: str, verify: bool) -> Lock:
    if not isinstance(raw, dict):
        raise ObsplanError("a lock is a JSON object", file=where, hint="regenerate it with 'obsplan plan'")
    fmt = _format_of(raw, where)
    digest = content_digest(raw)
    if verify and raw.get("content_sha256") != digest:
        raise ObsplanError(
            "lock was edited after it was generated (content_sha256 does not match its content)",
            file=where,
            key="content_sha256",
            hint="re-run 'obsplan plan' and review the regenerated lock instead of editing it by hand",
        )
    document, gaps = FORMATS[fmt].read(raw)
    try:
        lock = Lock.model_validate(document)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ObsplanError(msg, file=where, key=key, hint="regenerate it with 'obsplan plan'") from None
    check_lock(lock, where)
    lock._read = ReadInfo(format=fmt, digest=digest, gaps=gaps)
    return lock


def _format_of(raw: dict[str, Any], where: str) -> int:
    """The lock's format, refused when this obsplan has no reader for it (a newer one: naming both versions)."""
    fmt = raw.get("format_version")
    writer = raw.get("obsplan_version")
    named = isinstance(writer, str) and 0 < len(writer) <= 40
    by = f"written by obsplan {writer}" if named else "obsplan_version missing"
    if type(fmt) is int and fmt in FORMATS:
        return fmt
    if type(fmt) is int and fmt > FORMAT_VERSION:
        raise ObsplanError(
            f"lock format {fmt} ({by}) is newer than this obsplan {__version__} reads (formats 1 to {FORMAT_VERSION})",
            file=where,
            key="format_version",
            hint=f"upgrade obsplan on this machine to {writer if named else 'the version that wrote it'} "
            "or later, or write the lock with this obsplan ('obsplan plan')",
        )
    raise ObsplanError(
        f"lock format_version {repr(fmt)[:40]} is not one obsplan ever wrote ({by}; this obsplan {__version__} reads formats "
        f"1 to {FORMAT_VERSION})",
        file=where,
        key="format_version",
        hint="regenerate the lock with 'obsplan plan'",
    )
