"""What a lock needs in a bundle: every artifact it names for the chosen platforms, their upstream checksum
files, and the lock itself, each at a path derived from its download URL."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from obsplan.executor.bundle.files import LOCK_NAME

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Artifact, Lock

_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._+~@=,-]")

Kind = Literal["lock", "artifact", "checksum_file"]


@dataclass
class Wanted:
    """One file a bundle of this lock must hold."""

    path: str
    kind: Kind
    url: str
    sha256: str | None  # from the lock for artifacts (None: unverified); checksum files have none in the lock
    needed_by: list[str] = field(default_factory=list)
    artifact: Artifact | None = None
    checksum_path: str | None = None  # artifacts: their checksum file
    vouches_for: list[str] = field(default_factory=list)  # checksum files: the artifact paths they list


def url_path(prefix: str, url: str) -> str:
    """`artifacts/github.com/prometheus/node_exporter/releases/download/v1.9.0/node_exporter-....tar.gz`."""
    u = urlsplit(url)
    host = (u.hostname or "local") + (f"_{u.port}" if u.port else "")
    segments = [host] + [unquote(s) for s in u.path.split("/") if s]
    clean = []
    for seg in segments:
        seg = _SAFE_SEGMENT.sub("_", seg)
        clean.append("_" * len(seg) if seg in (".", "..") else seg)
    if u.query:
        clean[-1] += "_" + hashlib.sha256(u.query.encode()).hexdigest()[:12]
    return "/".join([prefix, *clean])


def wanted_files(lock: Lock, platforms: list[str]) -> dict[str, Wanted]:
    """Every artifact of every step and every component's final artifact for `platforms` (deduplicated by URL),
    their checksum files, and the lock itself. Raises ObsplanError (exit 2) for a lock that cannot be bundled."""
    out: dict[str, Wanted] = {LOCK_NAME: Wanted(LOCK_NAME, "lock", "", None)}
    for w in _artifacts_by_url(lock, platforms).values():
        if w.path in out:
            raise ObsplanError(
                f"two artifact URLs map to the same bundle path {w.path}",
                key="url",
                hint="report this: the URLs differ only in characters a file name cannot hold",
            )
        out[w.path] = w
        _add_checksum_file(out, w)
    return out


def _entries(lock: Lock, platforms: list[str]) -> list[tuple[str, str, Artifact | None]]:
    """(entry named in `needed_by`, what the lock calls it, its artifact or None) for every step and component."""
    entries: list[tuple[str, str, Artifact | None]] = []
    for s in lock.plan.steps:
        for p in platforms:
            entries.append((f"step {s.id} {p}", f"plan step {s.id!r}", s.artifacts.get(p)))
    for name, comp in sorted(lock.components.items()):
        for p in platforms:
            entries.append((f"component {name} {p}", f"component {name!r}", comp.artifacts.get(p)))
    return entries


def _artifacts_by_url(lock: Lock, platforms: list[str]) -> dict[str, Wanted]:
    by_url: dict[str, Wanted] = {}
    for entry, what, a in _entries(lock, platforms):
        if a is None:
            platform = entry.rsplit(" ", 1)[1]
            raise ObsplanError(
                f"the lock has no {platform} artifact for {what}",
                key="platforms",
                hint=f"bundle only the platforms the lock covers ({', '.join(lock.platforms)})",
            )
        w = by_url.get(a.url)
        if w is None:
            w = by_url[a.url] = Wanted(url_path("artifacts", a.url), "artifact", a.url, a.sha256, artifact=a)
        elif w.sha256 != a.sha256:
            raise ObsplanError(
                f"the lock names {a.url} with two different sha256 ({w.sha256} and {a.sha256})",
                hint="regenerate the lock with 'obsplan plan'",
            )
        w.needed_by.append(entry)
    return by_url


def _add_checksum_file(out: dict[str, Wanted], w: Wanted) -> None:
    """The checksum file vouching for artifact `w`, added to `out` (once, however many artifacts it lists)."""
    assert w.artifact is not None
    if not w.artifact.checksum_url:
        return
    cpath = url_path("checksums", w.artifact.checksum_url)
    c = out.setdefault(cpath, Wanted(cpath, "checksum_file", w.artifact.checksum_url, None))
    if c.kind != "checksum_file" or c.url != w.artifact.checksum_url:
        raise ObsplanError(f"two URLs map to the same bundle path {cpath}", key="checksum_url")
    c.vouches_for.append(w.path)
    c.needed_by.extend(e for e in w.needed_by if e not in c.needed_by)
    w.checksum_path = cpath
