"""The wheelhouse a bundle may carry (`obsplan bundle ... --with-obsplan`): `wheelhouse/` holding a wheel of
obsplan, its dependencies and pip, listed with their sha256 in `wheelhouse/wheelhouse.json` together with the
Python they were chosen for. `obsplan bundle --verify` checks it like every other file of the bundle; the
rollout (`--bootstrap`) reads it from the bundle tar on the controller and installs it on hosts lacking obsplan."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError

DIR = "wheelhouse"
INDEX = f"{DIR}/wheelhouse.json"
_WHEEL = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")
MAX_WHEEL_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class WheelhouseIndex:
    obsplan_version: str
    python_version: str  # "3.11"
    platform: str  # a pip platform tag, or "" for the building interpreter's own
    wheels: dict[str, str]  # file name → sha256

    def to_json(self) -> bytes:
        data = {
            "obsplan_version": self.obsplan_version,
            "platform": self.platform,
            "python_version": self.python_version,
            "wheels": dict(sorted(self.wheels.items())),
        }
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @property
    def pip_wheel(self) -> str:
        return next(n for n in sorted(self.wheels) if n.startswith("pip-"))


def parse_index(data: bytes, name: str) -> WheelhouseIndex:
    raw = jsonload.loads(data, name, "wheelhouse index")
    try:
        wheels = raw["wheels"]
        index = WheelhouseIndex(
            str(raw["obsplan_version"]), str(raw["python_version"]), str(raw["platform"]), dict(wheels)
        )
    except (KeyError, TypeError, ValueError):
        raise ObsplanError(
            "not a wheelhouse index", file=name, hint="rebuild with obsplan bundle --with-obsplan"
        ) from None
    bad = [n for n, sha in index.wheels.items() if not _WHEEL.match(n) or not re.fullmatch(r"[0-9a-f]{64}", str(sha))]
    if (
        bad
        or not any(n.startswith("pip-") for n in index.wheels)
        or not any(n.startswith("obsplan-") for n in index.wheels)
    ):
        raise ObsplanError(
            f"wheelhouse index lists bad or missing wheels {bad[:3]}", file=name, hint="rebuild the bundle"
        )
    return index


def problems(present: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(path, problem, detail) for every file under wheelhouse/ of a bundle directory that does not match its index."""
    files = {rel: p for rel, p in present.items() if rel.startswith(f"{DIR}/")}
    if not files:
        return []
    if INDEX not in files:
        return [(rel, "extra", "a wheelhouse without its index") for rel in sorted(files)]
    try:
        index = parse_index(files[INDEX].read_bytes(), INDEX)
    except ObsplanError as exc:
        return [(INDEX, "altered", exc.message)]
    out = []
    for name, sha in sorted(index.wheels.items()):
        p = files.get(f"{DIR}/{name}")
        if p is None or p.is_symlink() or not p.is_file():
            out.append((f"{DIR}/{name}", "missing", "listed in the wheelhouse index"))
        elif hashlib.sha256(p.read_bytes()).hexdigest() != sha:
            out.append((f"{DIR}/{name}", "altered", "sha256 differs from the wheelhouse index"))
    listed = {f"{DIR}/{n}" for n in index.wheels} | {INDEX}
    out += [(rel, "extra", "not in the wheelhouse index") for rel in sorted(files) if rel not in listed]
    return out


def from_bundle_tar(bundle: Path, dest: Path) -> WheelhouseIndex:
    """The wheelhouse of a bundle tar, every wheel checked against the index, written to `dest` (flat)."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            members = {m.name: m for m in tar.getmembers() if m.name.startswith(f"{DIR}/")}
            if INDEX not in members:
                raise ObsplanError(
                    "the bundle has no wheelhouse",
                    file=str(bundle),
                    key="--bootstrap",
                    hint="build it with: obsplan bundle LOCK -o FILE.tar --with-obsplan",
                )
            index = parse_index(_read(tar, members[INDEX], 1024 * 1024), f"{bundle}:{INDEX}")
            dest.mkdir(parents=True, exist_ok=True)
            for name, sha in index.wheels.items():
                member = members.get(f"{DIR}/{name}")
                data = _read(tar, member, MAX_WHEEL_BYTES) if member is not None else b""
                if hashlib.sha256(data).hexdigest() != sha:
                    raise ObsplanError(
                        f"wheel {name} is missing or altered", file=str(bundle), key=INDEX, hint="rebuild the bundle"
                    )
                (dest / name).write_bytes(data)
    except (tarfile.TarError, OSError) as exc:
        raise ObsplanError(
            f"cannot read the bundle tar: {exc}", file=str(bundle), key="--bundle", hint="rebuild it"
        ) from None
    return index


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if not member.isfile() or member.size > limit:
        return b""
    fh = tar.extractfile(member)
    return fh.read(limit) if fh is not None else b""
