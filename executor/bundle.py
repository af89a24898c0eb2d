"""Air-gapped bundles: exactly the artifacts a lock names, verified against it, in one directory (or plain tar).

Terraform's `providers mirror` resolves versions itself and ignores the lock (hashicorp/terraform#28274); a
bundle is driven by the lock only, so nothing that was not reviewed can be carried across the air gap.

Layout of a bundle directory (`obsplan bundle LOCK -o DIR`):

    obsplan.lock                    byte copy of the lock it was built from
    manifest.json                   file → kind, url, sha256, size, which lock entries need it (deterministic)
    artifacts/<host>/<url path>     each artifact, stored under its download URL (unique even when two
                                    versions share a file name, like loki-linux-amd64.zip)
    checksums/<host>/<url path>     each upstream checksum file, kept as evidence

Every write is a temp file renamed into place; `manifest.json` is removed first and written last, so an
interrupted build leaves no file that looks complete and no manifest claiming it is. `verify_bundle`
re-checks every file against the lock inside the bundle (not against the manifest, which it also checks).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import httpx

from obsplan import jsonload
from obsplan.errors import EXIT_FAILED, ObsplanError
from obsplan.fsio import fsync_dir, write_atomic
from obsplan.lockfile import Artifact, Lock, load_lock

from . import artifacts as art
from .report import Event, Reporter

BUNDLE_FORMAT = 1
LOCK_NAME = "obsplan.lock"
MANIFEST_NAME = "manifest.json"
TMP_MARK = ".tmp-"  # every temp file of a build: `.<name>.tmp-<pid>-<random>`

_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._+~@=,-]")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

Kind = Literal["lock", "artifact", "checksum_file"]


# --------------------------------------------------------------------------------------------------------
# what a lock needs


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
    entries: list[tuple[str, str, Artifact | None]] = []
    for s in lock.plan.steps:
        for p in platforms:
            entries.append((f"step {s.id} {p}", f"plan step {s.id!r}", s.artifacts.get(p)))
    for name, comp in sorted(lock.components.items()):
        for p in platforms:
            entries.append((f"component {name} {p}", f"component {name!r}", comp.artifacts.get(p)))
    by_url: dict[str, Wanted] = {}
    for entry, what, a in entries:
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
    out: dict[str, Wanted] = {LOCK_NAME: Wanted(LOCK_NAME, "lock", "", None)}
    for w in by_url.values():
        if w.path in out:
            raise ObsplanError(
                f"two artifact URLs map to the same bundle path {w.path}",
                key="url",
                hint="report this: the URLs differ only in characters a file name cannot hold",
            )
        out[w.path] = w
        assert w.artifact is not None
        if w.artifact.checksum_url:
            cpath = url_path("checksums", w.artifact.checksum_url)
            c = out.setdefault(cpath, Wanted(cpath, "checksum_file", w.artifact.checksum_url, None))
            if c.kind != "checksum_file" or c.url != w.artifact.checksum_url:
                raise ObsplanError(f"two URLs map to the same bundle path {cpath}", key="checksum_url")
            c.vouches_for.append(w.path)
            c.needed_by.extend(e for e in w.needed_by if e not in c.needed_by)
            w.checksum_path = cpath
    return out


# --------------------------------------------------------------------------------------------------------
# upstream checksum files (`<hex>  <name>` lines, or a bare-hex side-car)


def checksum_line(text: str, filename: str) -> str | None:
    """The sha256 a checksum file gives for `filename`, or None when it lists none."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and _HEX.match(parts[0]):
            name = parts[1].strip().lstrip("*")
            found[name.removeprefix("./")] = parts[0].lower()
        elif len(parts) == 1 and _HEX.match(parts[0]) and len(text.split()) == 1:
            return parts[0].lower()  # a side-car holding only the digest
    return found.get(filename) or next((v for k, v in found.items() if k.rsplit("/", 1)[-1] == filename), None)


def _checksum_problems(text: str, wanted: dict[str, Wanted], c: Wanted, actual: dict[str, str]) -> list[str]:
    """What the checksum file `c` says against the lock (and, for unverified artifacts, against the bytes)."""
    problems = []
    for apath in c.vouches_for:
        a = wanted[apath].artifact
        assert a is not None
        listed = checksum_line(text, a.filename)
        expected = a.sha256 or actual.get(apath)
        if listed is None and a.sha256 is not None:  # (for an unverified artifact it is simply no evidence)
            problems.append(f"{c.url} has no line for {a.filename}")
        elif listed is not None and expected is not None and listed != expected:
            source = "the lock" if a.sha256 else "the downloaded (unverified) file"
            problems.append(f"{c.url} says {listed} for {a.filename}, {source} says {expected}")
    return problems


# --------------------------------------------------------------------------------------------------------
# files


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{os.urandom(4).hex()}")


def _walk_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every entry below `directory` that is not a directory, links included."""
    for dirpath, dirnames, filenames in os.walk(directory):
        base = Path(dirpath)
        for name in sorted(dirnames):
            if (base / name).is_symlink():
                yield (base / name).relative_to(directory).as_posix(), base / name
        for name in sorted(filenames):
            yield (base / name).relative_to(directory).as_posix(), base / name


def render_manifest(
    lock: Lock, lock_bytes: bytes, platforms: list[str], wanted: dict[str, Wanted], records: dict[str, tuple[str, int]]
) -> bytes:
    """Deterministic bytes: `records` maps each present file to (sha256, size); no clock, no host facts."""
    files: dict[str, Any] = {}
    for path, w in sorted(wanted.items()):
        if path not in records:
            continue
        sha, size = records[path]
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
        files[path] = entry
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


# --------------------------------------------------------------------------------------------------------
# build


@dataclass
class BundleFile:
    path: str
    kind: str
    status: str  # downloaded | present | replaced (was corrupt) | written | removed
    size: int = 0
    sha256: str | None = None
    verified: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BundleResult:
    output: Path
    directory: Path
    platforms: list[str]
    lock_sha256: str
    files: list[BundleFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many downloadable files (artifacts, checksum files) have `status`."""
        return sum(1 for f in self.files if f.status == status and f.kind in ("artifact", "checksum_file"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "directory": str(self.directory),
            "platforms": self.platforms,
            "lock_sha256": self.lock_sha256,
            "files": [f.to_dict() for f in self.files],
            "downloaded": self.count("downloaded") + self.count("replaced"),
            "present": self.count("present"),
            "warnings": self.warnings,
            "unverified": [f.path for f in self.files if not f.verified],
        }


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


def _is_bundle_dir(directory: Path) -> bool:
    return (directory / LOCK_NAME).exists() or (directory / MANIFEST_NAME).exists()


def build_bundle(
    lock_path: Path,
    output: Path,
    platforms: list[str] | None = None,
    *,
    allow_unverified: bool = False,
    client: httpx.Client | None = None,
    reporter: Reporter | None = None,
) -> BundleResult:
    """Download exactly what `lock_path` names into `output` (a directory, or a plain tar when it ends in .tar).

    Idempotent: files already present with the right sha256 are kept (re-hashed, never trusted by name).
    Refuses (fail closed) artifacts without a sha256 in the lock unless `allow_unverified`.
    """
    lock = load_reviewed_lock(lock_path)
    chosen = _choose_platforms(lock, platforms)
    wanted = wanted_files(lock, chosen)
    unverified = sorted(p for p, w in wanted.items() if w.kind == "artifact" and w.sha256 is None)
    if unverified and not allow_unverified and lock.host_policy.require_checksum_verification:
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
    clients = _LazyClient(client)
    try:
        if output.suffix == ".tar":
            return _build_tar(lock_path, lock, output, chosen, wanted, clients, reporter)
        return _build_dir(lock_path, lock, output, chosen, wanted, clients, reporter)
    finally:
        clients.close()


class _LazyClient:
    """The injected client, or one made at the first download (a re-run with everything present opens none)."""

    def __init__(self, client: httpx.Client | None) -> None:
        self.client, self.own = client, client is None

    def get(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(timeout=60.0)
        return self.client

    def close(self) -> None:
        if self.own and self.client is not None:
            self.client.close()


def _build_tar(
    lock_path: Path,
    lock: Lock,
    output: Path,
    chosen: list[str],
    wanted: dict[str, Wanted],
    clients: _LazyClient,
    reporter: Reporter | None,
) -> BundleResult:
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
        result = _build_dir(lock_path, lock, staging / "b", chosen, wanted, clients, reporter)
        write_tar(staging / "b", output)
        result.output = output
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_dir(
    lock_path: Path,
    lock: Lock,
    directory: Path,
    chosen: list[str],
    wanted: dict[str, Wanted],
    clients: _LazyClient,
    reporter: Reporter | None,
) -> BundleResult:
    if directory.exists() and not directory.is_dir():
        raise ObsplanError(f"{directory} exists and is not a directory", key="-o")
    if directory.is_dir() and any(directory.iterdir()) and not _is_bundle_dir(directory):
        raise ObsplanError(
            f"{directory} is not empty and is not a bundle", key="-o", hint="bundle into a new or empty directory"
        )
    directory.mkdir(parents=True, exist_ok=True)
    lock_bytes = lock_path.read_bytes()
    result = BundleResult(directory, directory, chosen, lock.content_sha256)

    def emit(event: str, **meta: Any) -> None:
        if reporter is not None:
            reporter.emit(Event(None, event, meta))

    # previous records of files the lock cannot vouch for (unverified artifacts), then drop the manifest:
    # from here until the end, the bundle has no manifest and does not look complete
    previous: dict[str, Any] = {}
    try:
        previous = jsonload.read(directory / MANIFEST_NAME, MANIFEST_NAME).get("files", {})
    except (OSError, ObsplanError, AttributeError):
        previous = {}
    (directory / MANIFEST_NAME).unlink(missing_ok=True)
    fsync_dir(directory)
    for rel, found in list(_walk_files(directory)):  # temp files of an interrupted build; files no longer needed
        owned = rel.startswith(("artifacts/", "checksums/"))
        if TMP_MARK in found.name or (owned and rel not in wanted):
            found.unlink()
            result.files.append(BundleFile(rel, "stale", "removed"))
            emit("bundle_file", path=rel, status="removed")

    if (directory / LOCK_NAME).is_file() and (directory / LOCK_NAME).read_bytes() == lock_bytes:
        result.files.append(BundleFile(LOCK_NAME, "lock", "present", len(lock_bytes)))
    else:
        write_atomic(directory / LOCK_NAME, lock_bytes)
        result.files.append(BundleFile(LOCK_NAME, "lock", "written", len(lock_bytes)))
    records: dict[str, tuple[str, int]] = {LOCK_NAME: (hashlib.sha256(lock_bytes).hexdigest(), len(lock_bytes))}
    actual: dict[str, str] = {}

    # checksum files first: a disagreement with the lock stops the build before large downloads
    checksum_texts: dict[str, str] = {}
    for path, w in sorted(wanted.items()):
        if w.kind != "checksum_file":
            continue
        dest = directory / path
        only_unverified = all(wanted[a].sha256 is None for a in w.vouches_for)
        status = "present"
        text = dest.read_text(errors="replace") if dest.is_file() else None
        if text is None or _checksum_problems(text, wanted, w, {}):
            try:
                data = _get(clients.get(), w.url)
            except ObsplanError as exc:
                if not only_unverified:
                    raise
                msg = f"no upstream checksum file for unverified {', '.join(w.vouches_for)}: {exc.message}"
                result.warnings.append(msg)
                emit("warning", code="checksum_file_unavailable", message=msg)
                continue
            text = data.decode(errors="replace")
            problems = _checksum_problems(text, wanted, w, {})
            if problems and not only_unverified:
                raise ObsplanError(
                    f"upstream checksum file disagrees with the lock: {'; '.join(problems)}",
                    key="sha256",
                    hint="the release was changed after the lock was reviewed, or the "
                    "download is tampered with; do not bundle it",
                    exit_code=EXIT_FAILED,
                )
            status = "replaced" if dest.exists() else "downloaded"
            write_atomic(dest, data)
        checksum_texts[path] = text
        records[path] = (art.sha256_file(dest), dest.stat().st_size)
        result.files.append(BundleFile(path, "checksum_file", status, records[path][1], records[path][0]))
        emit("bundle_file", path=path, status=status)

    for path, w in sorted(wanted.items()):
        if w.kind != "artifact":
            continue
        assert w.artifact is not None
        dest = directory / path
        expected = w.sha256 or (previous.get(path) or {}).get("sha256")
        status = "present"
        have = art.sha256_file(dest) if dest.is_file() else None
        if have is None or have != expected:
            status = "downloaded" if have is None else "replaced"
            source = art.HttpSource(clients.get(), lock.host_policy.download_deadline_seconds)
            tmp, have = _download(source, w.artifact, dest)
            if w.sha256 is not None and have != w.sha256:
                tmp.unlink(missing_ok=True)
                raise art.ChecksumMismatch(
                    f"sha256 mismatch for {w.url}: expected {w.sha256} (lock), got {have}; not bundled",
                    hint="the download is corrupt or the release was changed; do not edit the lock",
                    exit_code=EXIT_FAILED,
                )
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
        actual[path] = have
        records[path] = (have, dest.stat().st_size)
        result.files.append(BundleFile(path, "artifact", status, records[path][1], have, w.sha256 is not None))
        emit("bundle_file", path=path, status=status, size=records[path][1])
        if w.sha256 is None:
            msg = (
                f"UNVERIFIED: {w.artifact.filename} (sha256 {have}) is bundled although the lock has no sha256 "
                "for it (--allow-unverified); nothing proves these are the reviewed bytes"
            )
            result.warnings.append(msg)
            emit("warning", code="unverified_artifact", path=path, sha256=have, message=msg)
    for cpath, text in checksum_texts.items():  # unverified artifacts against a checksum file published since
        problems = _checksum_problems(text, wanted, wanted[cpath], actual)
        if problems:
            raise ObsplanError(
                f"upstream checksum file disagrees with the bundled file: {'; '.join(problems)}",
                key="sha256",
                exit_code=EXIT_FAILED,
            )
    write_atomic(directory / MANIFEST_NAME, render_manifest(lock, lock_bytes, chosen, wanted, records))
    result.files.append(BundleFile(MANIFEST_NAME, "manifest", "written"))
    return result


def _get(client: httpx.Client, url: str) -> bytes:
    try:
        resp = client.get(url, follow_redirects=True, timeout=60)
    except httpx.HTTPError as exc:
        raise ObsplanError(f"could not fetch {url}: {exc}", exit_code=EXIT_FAILED) from None
    if resp.status_code != 200:
        raise ObsplanError(f"could not fetch {url}: HTTP {resp.status_code}", exit_code=EXIT_FAILED)
    return resp.content


def _download(source: art.ArtifactSource, artifact: Artifact, dest: Path) -> tuple[Path, str]:
    """Fetch into a temp file next to `dest` (renamed by the caller once accepted); returns it and its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dest)
    try:
        source.fetch(artifact, tmp, lambda n: None, lambda total: None)
        return tmp, art.sha256_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------------------
# tar: one file to carry


def write_tar(directory: Path, output: Path) -> None:
    """A plain tar of the bundle: lock and manifest first, then sorted paths; mtime 0, root:root, 0644."""
    rels = [rel for rel, p in _walk_files(directory) if p.is_file() and not p.is_symlink()]
    head = [r for r in (LOCK_NAME, MANIFEST_NAME) if r in rels]
    tmp = _tmp_name(output)
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


# --------------------------------------------------------------------------------------------------------
# verify


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


def _size_problem(path: str, actual_size: int, size: int | None, sha: str, expected: str, against: str) -> Problem:
    if size is not None and actual_size < size:
        return Problem(path, "truncated", f"{actual_size} of {size} bytes")
    return Problem(path, "altered", f"sha256 {sha}, {against} says {expected}")


def verify_bundle(directory: Path) -> VerifyResult:
    """Re-check every file of a bundle against the lock inside it. Raises ObsplanError (exit 2) for a lock
    edited after it was generated; every other problem is listed in the result."""
    if not directory.is_dir():
        raise ObsplanError(
            f"{directory} is not a directory",
            key="--verify",
            hint="a tar bundle is checked with 'obsplan bundle --extract FILE.tar -o DIR'",
        )
    lock_file = directory / LOCK_NAME
    if not lock_file.is_file() or lock_file.is_symlink():
        result = VerifyResult(directory, None, [])
        result.problems.append(Problem(LOCK_NAME, "missing", "the bundle holds no lock; nothing can be verified"))
        return result
    lock = load_reviewed_lock(lock_file)
    lock_bytes = lock_file.read_bytes()
    problems: list[Problem] = []
    manifest: dict[str, Any] = {}
    manifest_file = directory / MANIFEST_NAME
    if not manifest_file.is_file():
        problems.append(Problem(MANIFEST_NAME, "missing", "an interrupted or incomplete bundle; re-run obsplan bundle"))
    else:
        try:  # oversized, too deep, non-UTF-8 or duplicate keys: ObsplanError, exit 2 (obsplan/jsonload.py)
            manifest = jsonload.read(manifest_file, "bundle manifest", hint="rebuild the bundle with 'obsplan bundle'")
            if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
                raise ValueError("no files map")
        except ValueError as exc:
            problems.append(Problem(MANIFEST_NAME, "altered", f"not a bundle manifest: {exc}"))
            manifest = {}
    platforms = manifest.get("platforms") if isinstance(manifest.get("platforms"), list) else None
    if not platforms or not set(platforms) <= set(lock.platforms):
        platforms = sorted(lock.platforms)
    result = VerifyResult(directory, lock, platforms)
    recorded: dict[str, Any] = manifest.get("files", {})
    if manifest and (manifest.get("lock") or {}).get("sha256") != hashlib.sha256(lock_bytes).hexdigest():
        problems.append(
            Problem(
                LOCK_NAME,
                "altered",
                "not the lock the bundle was built from (manifest records "
                f"sha256 {(manifest.get('lock') or {}).get('sha256')})",
            )
        )
    wanted = wanted_files(lock, platforms)
    present = dict(_walk_files(directory))
    records: dict[str, tuple[str, int]] = {LOCK_NAME: (hashlib.sha256(lock_bytes).hexdigest(), len(lock_bytes))}
    actual: dict[str, str] = {}
    texts: dict[str, str] = {}
    for path, w in sorted(wanted.items()):
        if w.kind == "lock":
            continue
        rec = recorded.get(path) if isinstance(recorded.get(path), dict) else None
        p = present.get(path)
        optional = w.kind == "checksum_file" and all(wanted[a].sha256 is None for a in w.vouches_for)
        if p is None:
            if not (optional and rec is None and manifest):
                problems.append(Problem(path, "missing", f"needed by {', '.join(sorted(w.needed_by)[:3])}"))
            continue
        if p.is_symlink() or not p.is_file():
            problems.append(Problem(path, "unexpected_type", "a link or special file where a file belongs"))
            continue
        result.files_checked += 1
        sha, size = art.sha256_file(p), p.stat().st_size
        records[path], actual[path] = (sha, size), sha
        rec_size = rec.get("size") if rec else None
        if w.kind == "artifact" and w.sha256 is not None:
            if sha != w.sha256:
                problems.append(_size_problem(path, size, rec_size, sha, w.sha256, "the lock"))
            elif rec is not None and rec.get("sha256") != w.sha256:
                problems.append(Problem(MANIFEST_NAME, "altered", f"records {path} with another sha256 than the lock"))
            continue
        if w.kind == "checksum_file":
            texts[path] = p.read_text(errors="replace")  # checked against the lock below
        if rec is None or not rec.get("sha256"):
            if manifest:
                problems.append(Problem(MANIFEST_NAME, "altered", f"has no record of {path}"))
            continue
        if sha != rec["sha256"]:
            problems.append(_size_problem(path, size, rec_size, sha, rec["sha256"], "the manifest"))
            texts.pop(path, None)
        elif w.kind == "artifact":
            result.unverified.append(path)
    for path, text in texts.items():
        for msg in _checksum_problems(text, wanted, wanted[path], actual):
            problems.append(Problem(path, "disagrees", msg))
    expected = set(wanted) | {MANIFEST_NAME}
    for rel, p in sorted(present.items()):
        if rel not in expected:
            why = (
                "a temp file of an interrupted build"
                if TMP_MARK in p.name or p.name.endswith(".part")
                else ("not named by the lock")
            )
            problems.append(Problem(rel, "extra", why))
    # everything else checks out: the manifest must then be exactly what these files give
    if (
        manifest
        and not problems
        and render_manifest(lock, lock_bytes, platforms, wanted, records) != (manifest_file.read_bytes())
    ):
        problems.append(Problem(MANIFEST_NAME, "altered", "does not match what the lock and the files give"))
    result.problems = problems
    return result


# --------------------------------------------------------------------------------------------------------
# apply from a bundle


class BundleSource(art.ArtifactSource):
    """`apply --bundle`: every artifact comes from the bundle directory (by its URL's path); no network."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, artifact: Artifact) -> Path:
        return self.directory / url_path("artifacts", artifact.url)

    def describe(self, artifact: Artifact) -> str:
        return f"bundle {self.path(artifact)}"

    def fetch(
        self, artifact: Artifact, dest: Path, advance: art.Advance, on_total: Callable[[int | None], None]
    ) -> None:
        src = self.path(artifact)
        if not src.is_file():
            raise ObsplanError(
                f"the bundle {self.directory} has no {artifact.filename} ({src})",
                hint="rebuild the bundle for this lock and platform",
                exit_code=EXIT_FAILED,
            )
        art.copy_with_progress(src, dest, advance, on_total)


def check_for_apply(directory: Path, lock_path: Path, platform: str) -> VerifyResult:
    """Refuse a bundle that is not exactly the reviewed lock's, or that fails verification, before anything runs."""
    bundled = directory / LOCK_NAME
    if not bundled.is_file():
        raise ObsplanError(
            f"{directory} holds no {LOCK_NAME}: not a bundle",
            key="--bundle",
            hint="build one with 'obsplan bundle LOCK -o DIR'",
        )
    mine, theirs = lock_path.read_bytes(), bundled.read_bytes()
    if mine != theirs:
        raise ObsplanError(
            f"the bundle was built from another lock: {lock_difference(theirs, mine)}",
            file=str(lock_path),
            key="--bundle",
            hint=f"bundle this lock ('obsplan bundle {lock_path} -o DIR') or apply {bundled} after reviewing it",
        )
    result = verify_bundle(directory)
    if not result.ok:
        shown = "; ".join(str(p) for p in result.problems[:5])
        more = f" and {len(result.problems) - 5} more" if len(result.problems) > 5 else ""
        raise ObsplanError(
            f"bundle {directory} failed verification, nothing was changed: {shown}{more}",
            key="--bundle",
            hint=f"'obsplan bundle --verify {directory}' lists every problem; "
            "rebuild the bundle on a connected machine",
            exit_code=EXIT_FAILED,
        )
    if platform not in result.platforms:
        raise ObsplanError(
            f"the bundle has no artifacts for this host's platform {platform} "
            f"(built for {', '.join(result.platforms)})",
            key="--bundle",
            hint=f"rebuild it with --platform {platform}",
        )
    return result


def lock_difference(bundled: bytes, given: bytes) -> str:
    """A short account of how two lock files differ: content hashes, component versions, else the first line."""
    try:
        a, b = json.loads(bundled), json.loads(given)
    except ValueError:
        a = b = None
    parts = []
    if isinstance(a, dict) and isinstance(b, dict):
        if a.get("content_sha256") != b.get("content_sha256"):
            parts.append(
                f"content_sha256 {str(a.get('content_sha256'))[:12]} (bundle) vs "
                f"{str(b.get('content_sha256'))[:12]} (LOCK)"
            )
        for key in ("environment", "obsplan_version", "platforms"):
            if a.get(key) != b.get(key):
                parts.append(f"{key} {a.get(key)} (bundle) vs {b.get(key)} (LOCK)")
        ca, cb = a.get("components") or {}, b.get("components") or {}
        for name in sorted(set(ca) | set(cb)):
            va, vb = (ca.get(name) or {}).get("version"), (cb.get(name) or {}).get("version")
            if va != vb:
                parts.append(f"{name} {va or 'absent'} (bundle) vs {vb or 'absent'} (LOCK)")
    if not parts and a is not None and a == b:
        parts.append(
            "same content, different bytes (line endings, whitespace or key order): the file was "
            "re-encoded after the bundle was built; use the lock file exactly as reviewed"
        )
    if not parts:
        la, lb = bundled.decode(errors="replace").splitlines(), given.decode(errors="replace").splitlines()
        n = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
        x = la[n].strip() if n < len(la) else "<end of file>"
        y = lb[n].strip() if n < len(lb) else "<end of file>"
        parts.append(f"line {n + 1}: {x[:80]!r} (bundle) vs {y[:80]!r} (LOCK)")
    return "; ".join(parts[:6])


# --------------------------------------------------------------------------------------------------------
# reading a lock for apply/bundle


def load_reviewed_lock(path: Path) -> Lock:
    """`load_lock` (content hash and format version checked), naming the obsplan that wrote an unsupported lock."""
    try:
        return load_lock(path)
    except ObsplanError as exc:
        if exc.key == "format_version":
            try:
                writer = json.loads(path.read_text()).get("obsplan_version")
            except (OSError, ValueError, AttributeError):
                writer = None
            if writer:
                exc.message += f"; it was written by obsplan {writer}"
        raise
