"""Stage 8, finish: the upgrade recorded (history, installed version, rollback floor, the point made
available) in one transaction, then retention."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from obsplan.executor.recovery.retention import retention
from obsplan.executor.stages.step_results import StepResult

from obsplan.kernel.versions import highest_floor

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def run(r: StepRunner) -> None:
    if r.ctx.dry_run:
        return
    assert r.ctx.db is not None and r.point is not None
    with r.stage("finish"):
        floor = _floor(r)
        _record(r, floor)
        removed = retention(r.ctx, r.c)
    previous = r.point.from_version
    detail = {"from": previous, "to": r.step.to_version, "floor": floor, "removed": removed}
    r.result = StepResult(r.step.id, r.c, "ok", "upgraded", detail)
    duration = round(time.monotonic() - r.t0, 3)
    r.emit("step_done", from_version=previous, to_version=r.step.to_version, duration=duration, removed=removed)


def _floor(r: StepRunner) -> str | None:
    """The higher of the recorded rollback floor and this step's."""
    assert r.ctx.db is not None
    row = r.ctx.db.installed(r.c)
    floors = [f for f in (row["floor"] if row is not None else None, r.step.rollback_floor) if f]
    return highest_floor(floors)


def _record(r: StepRunner, floor: str | None) -> None:
    assert r.ctx.db is not None and r.point is not None
    db, previous = r.ctx.db, r.point.from_version
    with db.transaction():
        r.history.record("upgrade", previous, r.step.to_version, success=True, unverified=r.unverified)
        db.set_point_status(r.point.id, "available" if previous else "initial")
        db.set_installed(r.c, r.step.to_version, previous=previous, floor=floor, last_result="ok", last_step=r.step.id)
        db.journal(r.ctx.run_id, r.step.id, r.c, "step", "done", r.step.to_version)
