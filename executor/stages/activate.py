"""Stages 5-7, activate: switch, restart and verify the new version (journalled stages); any failure after
the switch rolls back to the checkpoint automatically (`autorollback`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import adopt
from ..activate import activate
from ..results import StepResult
from .autorollback import auto_rollback

if TYPE_CHECKING:
    from ..steps import StepRunner


def run(r: StepRunner) -> None:
    if r.ctx.dry_run:
        _would_activate(r)
        return
    assert r.point is not None
    if r.point.label == adopt.ADOPTED:  # the backup is safe: stop what runs outside obsplan
        adopt.take_over(r.ctx, r, r.point)
    try:
        activate(r, r.step.to_version, stage=r.stage)
    except Exception as exc:  # noqa: BLE001 - any failure after the switch must roll back
        auto_rollback(r, exc)


def _would_activate(r: StepRunner) -> None:
    r.emit(
        "would_switch",
        current=str(r.ctx.layout.current_link(r.c)),
        to=r.step.to_version,
        definition=str(r.ctx.services.definition_path(r.c)),
    )
    r.emit("would_restart", service=r.c, health=r.runtime.health_path, window=r.ctx.window)
    r.result = StepResult(r.step.id, r.c, "would_run", "dry_run")
