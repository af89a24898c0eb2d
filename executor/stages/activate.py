"""Stages 5-7, activate: switch, restart and verify the new version (journalled stages); any failure after
the switch rolls back to the checkpoint automatically (`autorollback`)."""

from __future__ import annotations

import obsplan.executor.checks.postverify as postverify
import obsplan.executor.host.adopt_install as adopt
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.services.switch_version import activate
from obsplan.executor.stages.autorollback import auto_rollback
from obsplan.executor.stages.history_rows import StepClock
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import ActivateResult, CheckpointResult, FetchResult, StepFailed


def run(
    facts: StepFacts, journal: StepJournal, clock: StepClock, checkpoint: CheckpointResult, fetched: FetchResult
) -> ActivateResult:
    """Switch to the target and prove it serves; on any failure, roll back to `checkpoint.point` (the failed
    upgrade is recorded with `fetched.unverified`, timed by the step's `clock`)."""
    version = facts.step.to_version
    if facts.ctx.dry_run:
        _would_activate(facts)
        return ActivateResult(version, dry_run=True)
    point = checkpoint.point
    assert point is not None
    if point.label == adopt.ADOPTED:  # the backup is safe: stop what runs outside obsplan
        adopt.take_over(facts.ctx, facts, point)
    try:
        activate(facts, version, stage=journal.stage)
        verified = _post_verify(facts, journal)
    except Exception as exc:  # noqa: BLE001 - any failure after the switch must roll back
        auto_rollback(facts, journal, point, clock, fetched.unverified, exc)
    return ActivateResult(version, tuple(verified))


def _post_verify(facts: StepFacts, journal: StepJournal) -> list[str]:
    """The policy's PromQL for this component must hold (`postverify`); failing ones fail the step."""
    ctx = facts.ctx
    spec = ctx.policy.verify
    expressions = spec.expressions.get(facts.c, []) if spec is not None else []
    if spec is None or not expressions:
        return []
    with journal.stage("post_verify"):
        failing = postverify.check(ctx.client, ctx.verify_url, facts.c, expressions, spec.within_seconds)
        if failing:
            raise StepFailed(
                "verify_failed",
                f"{facts.c} {facts.step.to_version} is healthy but the policy's verify expressions do not hold "
                f"within {spec.within_seconds}s (asked {ctx.verify_url}): {'; '.join(failing)}",
                failing=failing,
            )
        facts.emit("post_verified", prometheus=ctx.verify_url, expressions=expressions)
    return list(expressions)


def _would_activate(facts: StepFacts) -> None:
    ctx, c = facts.ctx, facts.c
    facts.emit(
        "would_switch",
        current=str(ctx.layout.current_link(c)),
        to=facts.step.to_version,
        definition=str(ctx.services.definition_path(c)),
    )
    facts.emit("would_restart", service=c, health=facts.runtime.health_path, window=ctx.window)
