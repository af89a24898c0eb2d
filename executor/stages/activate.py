"""Stages 5-7, activate: switch, restart and verify the new version (journalled stages); any failure after
the switch rolls back to the checkpoint automatically (`autorollback`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import obsplan.executor.checks.postverify as postverify
import obsplan.executor.host.adopt_install as adopt
from obsplan.executor.services.switch_version import activate
from obsplan.executor.stages.autorollback import auto_rollback
from obsplan.executor.stages.step_results import StepFailed, StepResult

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def run(r: StepRunner) -> None:
    if r.ctx.dry_run:
        _would_activate(r)
        return
    assert r.point is not None
    if r.point.label == adopt.ADOPTED:  # the backup is safe: stop what runs outside obsplan
        adopt.take_over(r.ctx, r, r.point)
    try:
        activate(r, r.step.to_version, stage=r.stage)
        _post_verify(r)
    except Exception as exc:  # noqa: BLE001 - any failure after the switch must roll back
        auto_rollback(r, exc)


def _post_verify(r: StepRunner) -> None:
    """The policy's PromQL for this component must hold (`postverify`); failing ones fail the step."""
    spec = r.ctx.policy.verify
    expressions = spec.expressions.get(r.c, []) if spec is not None else []
    if spec is None or not expressions:
        return
    with r.stage("post_verify"):
        failing = postverify.check(r.ctx.client, r.ctx.verify_url, r.c, expressions, spec.within_seconds)
        if failing:
            raise StepFailed(
                "verify_failed",
                f"{r.c} {r.step.to_version} is healthy but the policy's verify expressions do not hold within "
                f"{spec.within_seconds}s (asked {r.ctx.verify_url}): {'; '.join(failing)}",
                failing=failing,
            )
        r.emit("post_verified", prometheus=r.ctx.verify_url, expressions=expressions)


def _would_activate(r: StepRunner) -> None:
    r.emit(
        "would_switch",
        current=str(r.ctx.layout.current_link(r.c)),
        to=r.step.to_version,
        definition=str(r.ctx.services.definition_path(r.c)),
    )
    r.emit("would_restart", service=r.c, health=r.runtime.health_path, window=r.ctx.window)
    r.result = StepResult(r.step.id, r.c, "would_run", "dry_run")
