"""`apply --bundle`: artifacts come from a verified bundle of exactly the reviewed lock; no network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import obsplan.executor.artifacts.store as art
from obsplan.executor.bundle.files import LOCK_NAME
from obsplan.executor.bundle.verify import VerifyResult, verify_bundle
from obsplan.executor.bundle.wanted import url_path

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import Artifact
from obsplan.lock.raw_bytes import read_lock_bytes
from obsplan.lock.read import LockFile
from obsplan.lock.review import lock_difference


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


def check_for_apply(directory: Path, given: LockFile, platform: str) -> VerifyResult:
    """Refuse a bundle that is not exactly the reviewed lock's, or that fails verification, before anything runs."""
    bundled = directory / LOCK_NAME
    if not bundled.is_file():
        raise ObsplanError(
            f"{directory} holds no {LOCK_NAME}: not a bundle",
            key="--bundle",
            hint="build one with 'obsplan bundle LOCK -o DIR'",
        )
    lock_path = given.path
    mine, theirs = given.data, read_lock_bytes(bundled)
    if mine != theirs:
        raise ObsplanError(
            f"the bundle was built from another lock: {lock_difference(theirs, mine)}",
            file=str(lock_path),
            key="--bundle",
            hint=f"bundle this lock ('obsplan bundle {lock_path} -o DIR') or apply {bundled} after reviewing it",
        )
    result = verify_bundle(directory, theirs)
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
