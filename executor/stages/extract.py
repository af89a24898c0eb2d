"""Stage 3, extract: the archive unpacked into the version's directory, its service binary present and
reporting the locked version (nothing is switched otherwise)."""

from __future__ import annotations

from pathlib import Path

import obsplan.executor.artifacts.store as art
from obsplan.executor.host.probes import free_bytes
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import ExtractResult, FetchResult, StepFailed


def run(facts: StepFacts, journal: StepJournal, fetched: FetchResult) -> ExtractResult:
    """Unpack `fetched.archive` into the target version's directory (kept when it is complete already)."""
    ctx, rt, version = facts.ctx, facts.runtime, facts.step.to_version
    a = fetched.artifact
    target = ctx.layout.version_dir(facts.c, version)
    if ctx.dry_run:
        facts.emit("would_extract", to=str(target), exists=target.is_dir())
        return ExtractResult(target, False)
    with journal.stage("extract"):
        archive = fetched.archive
        assert archive is not None
        free = free_bytes(target.parent)
        if not target.is_dir() and free < 3 * archive.stat().st_size:
            raise StepFailed("disk_full", f"{free} bytes free, need {3 * archive.stat().st_size}")
        limits = ctx.policy.archive_limits
        extracted = art.ensure_extracted(archive, a, target.parent, version, rt.service_binary, limits)
        missing = [n for n, g in rt.binaries.items() if art.find_binary(target, g) is None]
        if rt.service_binary in missing:
            raise StepFailed(
                "binary_missing",
                f"{a.filename} has no {rt.service_binary} (glob {rt.binaries.get(rt.service_binary)})",
            )
        reported = _check_version(facts, target)
        facts.emit(
            "extracted" if extracted else "extract_cached",
            dir=str(target),
            binary_version=reported,
            missing_optional=missing,
        )
    return ExtractResult(target, extracted, reported)


def _check_version(facts: StepFacts, target: Path) -> str | None:
    """The version the extracted service binary reports (None: it reports none); refused when not the lock's."""
    rt, version = facts.runtime, facts.step.to_version
    binary = art.find_binary(target, rt.binaries[rt.service_binary])
    assert binary is not None
    reported = facts.probe(binary, facts.ctx.db)
    if reported is not None and reported != version:
        raise StepFailed(
            "wrong_version",
            f"{binary} reports version {reported}, the lock says {version}; nothing was switched",
            reported=reported,
        )
    return reported
