"""Stage 2, fetch: the artifact downloaded (or found cached) and verified against the lock's sha256."""

from __future__ import annotations

from typing import Any

import obsplan.executor.artifacts.store as art
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import FetchResult

from obsplan.lock.lockfile import Artifact


def run(facts: StepFacts, journal: StepJournal, artifact: Artifact) -> FetchResult:
    """Fetch and verify `artifact` (preflight's); a dry run says what it would fetch."""
    ctx, a = facts.ctx, artifact
    assert a.sha256 or ctx.allow_unverified
    if ctx.dry_run:
        facts.emit(
            "would_fetch",
            source=ctx.source.describe(a),
            to=str(ctx.layout.downloads / a.filename),
            sha256=a.sha256 or "UNVERIFIED",
        )
        return FetchResult(a, None)
    with journal.stage("fetch"):

        def progress(total: int | None) -> Any:
            return ctx.reporter.progress(facts.c, a.filename, total)

        if not a.sha256:
            return _fetch_unverified(facts, a, progress)
        cap = ctx.policy.archive_limits.max_total_bytes  # unless the lock states the artifact's size
        archive, fetched = art.ensure_download(a, ctx.layout.downloads, ctx.source, progress, cap)
        facts.emit(
            "fetched" if fetched else "fetch_cached", file=a.filename, sha256=a.sha256, size=archive.stat().st_size
        )
    return FetchResult(a, archive, fetched)


def _fetch_unverified(facts: StepFacts, a: Artifact, progress: Any) -> FetchResult:
    """--allow-unverified: the digest of what was fetched is recorded, never trusted."""
    ctx = facts.ctx
    cap = ctx.policy.archive_limits.max_total_bytes
    archive, actual = art.fetch_unverified(a, ctx.layout.downloads, ctx.source, progress, cap)
    unverified = (
        f"{a.filename} installed WITHOUT sha256 verification (--allow-unverified; "
        f"the lock has none); fetched bytes have sha256 {actual}"
    )
    facts.emit("warning", code="unverified_artifact", file=a.filename, sha256=actual, message=unverified)
    return FetchResult(a.model_copy(update={"sha256": actual}), archive, True, unverified)
