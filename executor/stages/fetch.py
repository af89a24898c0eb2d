"""Stage 2, fetch: the artifact downloaded (or found cached) and verified against the lock's sha256."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import obsplan.executor.artifacts.store as art

from obsplan.lock.lockfile import Artifact

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def run(r: StepRunner) -> None:
    a = r.artifact
    assert a is not None and (a.sha256 or r.ctx.allow_unverified)
    if r.ctx.dry_run:
        r.emit(
            "would_fetch",
            source=r.ctx.source.describe(a),
            to=str(r.ctx.layout.downloads / a.filename),
            sha256=a.sha256 or "UNVERIFIED",
        )
        return
    with r.stage("fetch"):

        def progress(total: int | None) -> Any:
            return r.ctx.reporter.progress(r.c, a.filename, total)

        if not a.sha256:
            _fetch_unverified(r, a, progress)
            return
        cap = r.ctx.policy.archive_limits.max_total_bytes  # unless the lock states the artifact's size
        r.archive, fetched = art.ensure_download(a, r.ctx.layout.downloads, r.ctx.source, progress, cap)
        r.emit(
            "fetched" if fetched else "fetch_cached", file=a.filename, sha256=a.sha256, size=r.archive.stat().st_size
        )


def _fetch_unverified(r: StepRunner, a: Artifact, progress: Any) -> None:
    """--allow-unverified: the digest of what was fetched is recorded, never trusted."""
    cap = r.ctx.policy.archive_limits.max_total_bytes
    r.archive, actual = art.fetch_unverified(a, r.ctx.layout.downloads, r.ctx.source, progress, cap)
    r.artifact = a.model_copy(update={"sha256": actual})
    r.unverified = (
        f"{a.filename} installed WITHOUT sha256 verification (--allow-unverified; "
        f"the lock has none); fetched bytes have sha256 {actual}"
    )
    r.emit("warning", code="unverified_artifact", file=a.filename, sha256=actual, message=r.unverified)
