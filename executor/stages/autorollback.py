"""The automatic rollback of a step that failed after its switch: back to the checkpoint, verified serving;
when that fails too, the result says where the backup is."""

from __future__ import annotations

from typing import NoReturn

from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.recovery.restore import restore_point
from obsplan.executor.stages.history_rows import StepClock, record_upgrade_failed
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import StepEnded
from obsplan.executor.state.state_db import RollbackPoint


def auto_rollback(
    facts: StepFacts,
    journal: StepJournal,
    point: RollbackPoint,
    clock: StepClock,
    unverified: str | None,
    exc: BaseException,
) -> NoReturn:
    """Restore `point` after `exc`; records the history rows (the failed upgrade timed by the step's `clock`, with
    `unverified`),
    then ends the step (`StepEnded`: rolled back, or the rollback failed too)."""
    ctx, step, c = facts.ctx, facts.step, facts.c
    assert ctx.db is not None
    db, error = ctx.db, str(exc)
    facts.emit("auto_rollback_started", error=error, to_version=point.from_version)
    record_upgrade_failed(clock.history(db, ctx.run_id, c, step.id), step, error, unverified)
    rows = ctx.history(c, step.id)
    try:
        with journal.stage("rollback"):
            restore_point(facts, point)
    except Exception as rb_exc:  # noqa: BLE001 - report where the backup is, whatever went wrong
        rows.record("auto_rollback", step.to_version, point.from_version, success=False, error=str(rb_exc))
        db.set_point_status(point.id, "failed")
        message = _failed_message(error, point, rb_exc)
        raise StepEnded("rollback_failed", "rollback_failed", message, backup=point.backup_dir) from None
    rows.record("auto_rollback", step.to_version, point.from_version, success=True, error=f"rolled back after: {error}")
    db.set_point_status(point.id, "used")
    row = db.installed(c)
    floor = row["floor"] if row is not None else None
    db.set_installed(
        c, point.from_version, previous=step.to_version, floor=floor, last_result="rolled_back", last_step=step.id
    )
    raise StepEnded(
        "rolled_back",
        getattr(exc, "reason", type(exc).__name__),
        f"{error} (automatically rolled back to {point.from_version or 'nothing installed'})",
        rolled_back_to=point.from_version,
    )


def _failed_message(error: str, point: RollbackPoint, rb_exc: BaseException) -> str:
    return (
        f"{error}; automatic rollback to {point.from_version or 'nothing'} FAILED too: {rb_exc}. "
        f"Backup of the previous unit/config: {point.backup_dir}; previous version directory: "
        f"{point.version_dir or '-'}; data directory: {point.data_dir or '-'}"
    )
