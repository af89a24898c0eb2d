"""Host paths, all under one root (`--root`, default `/`), so an apply can be rehearsed into a directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import obsplan.kernel.pathpolicy as pathpolicy
from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.fsio import fsync_dir

APPLIED_LOCK = "applied-lock.json"  # the copy of the lock the last apply used, in the state directory


@dataclass(frozen=True)
class Layout:
    root: Path

    def host(self, path: str | Path) -> Path:
        """The path `path` (absolute on the host) under the root, proven to stay inside the root once resolved.

        Raises ObsplanError (exit 2) for a path with `..`/`.` parts, or one whose existing part resolves (links
        followed) outside the root; nothing is created either way."""
        text = str(path)
        try:
            pathpolicy.check_host_path(text if text.startswith("/") else "/" + text, "host path")
        except ValueError as exc:
            raise ObsplanError(
                str(exc), key="path", hint="a lock or configuration may only name normalised paths under --root"
            ) from None
        candidate = self.root / text.lstrip("/")
        return inside(self.root, candidate)

    def child(self, parent: Path, name: str) -> Path:
        """`parent/name` for one validated path part (a component name or a version), proven inside the root."""
        try:
            pathpolicy.check_filename(name, "path part")
        except ValueError as exc:
            raise ObsplanError(
                str(exc), key="path", hint="component names and versions are single path parts"
            ) from None
        return inside(self.root, parent / name)

    @property
    def state_dir(self) -> Path:
        return self.host("/var/lib/obsplan")

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "apply.lock"

    @property
    def lock_info_path(self) -> Path:
        return self.state_dir / "apply.lock.holder"

    @property
    def downloads(self) -> Path:
        return self.host("/var/cache/obsplan/downloads")

    @property
    def backups(self) -> Path:
        return inside(self.root, self.state_dir / "backups")

    def backup_dir(self, component: str, name: str) -> Path:
        """A new backup directory `backups/<component>/<name>`, proven inside the root (not created here)."""
        return inside(self.root, self.child(self.backups, component) / name.replace("/", "_"))

    @property
    def metrics_path(self) -> Path:
        return inside(self.root, self.state_dir / "metrics") / "obsplan.prom"

    def own_files(self) -> dict[Path, str]:
        """obsplan's own files on the host, each opened without following a final link (`obsplan.safeio.ownfiles`)."""
        return {
            self.db_path: "state database",
            self.lock_path: "apply lock file",
            self.lock_info_path: "apply lock holder file",
            self.state_dir / APPLIED_LOCK: "applied lock copy",
            self.audit_path: "audit log",
            self.metrics_path: "metrics file",
        }

    @property
    def log_dir(self) -> Path:
        return self.host("/var/log/obsplan")

    @property
    def audit_path(self) -> Path:
        return self.log_dir / "audit.jsonl"

    @property
    def bin_dir(self) -> Path:
        return self.host("/usr/local/bin")

    def component_dir(self, component: str) -> Path:
        return self.child(self.host("/opt/obsplan"), component)

    def version_dir(self, component: str, version: str) -> Path:
        return self.child(self.component_dir(component), version)

    def current_link(self, component: str) -> Path:
        return self.component_dir(component) / "current"

    def current_version(self, component: str) -> str | None:
        """The version `current` points at (a fact read from the symlink), or None."""
        link = self.current_link(component)
        try:
            target = os.readlink(link)
        except OSError:
            return None
        return Path(target).name


def inside(root: Path, candidate: Path) -> Path:
    """`candidate` unchanged when, with every existing link followed, it resolves inside `root`; else exit 2."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise ObsplanError(
            f"{candidate} resolves to {real}, outside the root {real_root}",
            key="--root",
            hint="a link under --root points outside it; remove it or choose another --root",
        )
    return candidate


def relative_symlink(target: Path, link: Path) -> None:
    """Point `link` at `target` atomically: a temp symlink renamed over the old one (readers never see none)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(target, link.parent)
    try:
        if os.readlink(link) == rel:
            return
    except OSError:
        pass
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(rel, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)
