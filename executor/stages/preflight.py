"""Stage 1, pre-flight: before anything changes, the step can run here (artifact and checksum for this
platform, service manager reachable, service renderable, disk space) and the host is where the step starts."""

from __future__ import annotations

from obsplan.executor.host.probes import free_bytes
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import PreflightResult, StepFailed

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Artifact, Step

MIN_FREE = 64 * 1024 * 1024


def run(facts: StepFacts, journal: StepJournal, chain: list[Step]) -> PreflightResult:
    """Check the step can start; `chain`: the component's steps in order (a dry run may be before them)."""
    step, ctx = facts.step, facts.ctx
    journal.record("step", "start", step.to_version)
    facts.emit("step_started", from_version=step.from_version, to_version=step.to_version, dry_run=ctx.dry_run)
    with journal.stage("preflight"):
        a = _artifact(facts)
        ok, why = ctx.services.reachable()
        if not ok:
            raise StepFailed("service_manager_unreachable", why)
        try:  # renders (secrets readable) and its files' owner exists: nothing fails after the switch for it
            facts.rendered(step.to_version)
            facts.files_current(step.to_version)
        except ObsplanError as exc:
            raise StepFailed("service_definition", f"cannot render the {facts.c} service: {exc}") from None
        _check_disk(facts, a)
        host, how = facts.host_version()
        pending = ctx.db.pending_point(step.id) if ctx.db is not None else None
        facts.record_host(host, how)
        _check_start(facts, chain, host, how)
        facts.emit(
            "preflight_ok",
            host_version=host,
            sha256=a.sha256 or "UNVERIFIED",
            service_manager=ctx.services.name,
            resume=pending.id if pending else None,
        )
    return PreflightResult(a, host, pending)


def _artifact(facts: StepFacts) -> Artifact:
    a = facts.step.artifacts.get(facts.ctx.platform)
    if a is None:
        raise StepFailed(
            "no_artifact_for_platform",
            f"the lock has no artifact for {facts.ctx.platform}",
            platforms=sorted(facts.step.artifacts),
        )
    if not a.sha256 and not facts.ctx.allow_unverified:
        raise StepFailed(
            "missing_sha256",
            f"refusing {a.filename}: the lock has no sha256 for it (checksum_status={a.checksum_status})",
        )
    return a


def _check_disk(facts: StepFacts, a: Artifact) -> None:
    layout = facts.ctx.layout
    free = free_bytes(layout.root)
    cached = layout.downloads / a.filename
    need = max(MIN_FREE, 3 * cached.stat().st_size) if cached.is_file() else MIN_FREE
    if free < need:
        raise StepFailed("disk_full", f"{free} bytes free under {layout.root}, need {need}")


def _check_start(facts: StepFacts, chain: list[Step], host: str | None, how: str) -> None:
    """The host runs a version this step may start from (else refused, unless --force)."""
    step = facts.step
    if host in _expected(facts, chain):
        return
    if facts.ctx.force:
        facts.emit("off_plan_path_forced", host_version=host, expected=step.from_version)
        return
    raise StepFailed(
        "off_plan_path",
        f"host runs {facts.c} {host or 'nothing'} ({how}); this step expects "
        f"{step.from_version or 'nothing installed'} → {step.to_version}. "
        "Re-run 'obsplan plan' against the host's version, or pass --force to apply this step anyway",
        host_version=host,
        expected=step.from_version,
    )


def _expected(facts: StepFacts, chain: list[Step]) -> set[str | None]:
    step, ctx = facts.step, facts.ctx
    expected = {step.from_version, step.to_version}
    if ctx.dry_run:  # earlier steps of the chain only "would run": the host may still be before them
        idx = chain.index(step) if step in chain else 0
        expected |= {chain[0].from_version, *(s.to_version for s in chain[:idx])}
    if facts.c in ctx.accepted_from:  # off the plan's path, but the matrix allows this start
        expected.add(ctx.accepted_from[facts.c])
    return expected
