"""A lock as reviewed: loading one for apply/bundle, and saying how two lock files differ (a bundle's lock and
the LOCK given to `apply --bundle`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from obsplan.lock.lockfile import Lock, load_lock


def load_reviewed_lock(path: Path) -> Lock:
    """`load_lock`: the content hash checked against the document as written, and a format this obsplan does not
    read refused naming the obsplan that wrote it (`obsplan/lock/read.py`)."""
    return load_lock(path)


def format_note(a: Lock, b: Lock, old: str, new: str) -> str | None:
    """One line when two locks differ in format or writer (what `diff` would not show otherwise), else None."""
    if (a.format_version, a.obsplan_version) == (b.format_version, b.obsplan_version):
        return None
    text = (
        f"lock format {a.format_version} (obsplan {a.obsplan_version}) → {b.format_version} "
        f"(obsplan {b.obsplan_version})"
    )
    for lock, name in ((a, old), (b, new)):
        if lock.format_gaps():
            text += f"; {name} has no {' and no '.join(lock.format_gaps())}: apply refuses it, 'obsplan plan' again"
    return text


def lock_difference(bundled: bytes, given: bytes) -> str:
    """A short account of how two lock files differ: content hashes, component versions, else the first line."""
    try:
        a, b = json.loads(bundled), json.loads(given)
    except ValueError:
        a = b = None
    parts = _field_differences(a, b) if isinstance(a, dict) and isinstance(b, dict) else []
    if not parts and a is not None and a == b:
        parts.append(
            "same content, different bytes (line endings, whitespace or key order): the file was "
            "re-encoded after the bundle was built; use the lock file exactly as reviewed"
        )
    if not parts:
        parts.append(_first_line_difference(bundled, given))
    return "; ".join(parts[:6])


def _field_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    parts = []
    if a.get("content_sha256") != b.get("content_sha256"):
        parts.append(
            f"content_sha256 {str(a.get('content_sha256'))[:12]} (bundle) vs {str(b.get('content_sha256'))[:12]} (LOCK)"
        )
    for key in ("environment", "obsplan_version", "platforms"):
        if a.get(key) != b.get(key):
            parts.append(f"{key} {a.get(key)} (bundle) vs {b.get(key)} (LOCK)")
    ca, cb = a.get("components") or {}, b.get("components") or {}
    for name in sorted(set(ca) | set(cb)):
        va, vb = (ca.get(name) or {}).get("version"), (cb.get(name) or {}).get("version")
        if va != vb:
            parts.append(f"{name} {va or 'absent'} (bundle) vs {vb or 'absent'} (LOCK)")
    return parts


def _first_line_difference(bundled: bytes, given: bytes) -> str:
    la, lb = bundled.decode(errors="replace").splitlines(), given.decode(errors="replace").splitlines()
    n = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    x = la[n].strip() if n < len(la) else "<end of file>"
    y = lb[n].strip() if n < len(lb) else "<end of file>"
    return f"line {n + 1}: {x[:80]!r} (bundle) vs {y[:80]!r} (LOCK)"
