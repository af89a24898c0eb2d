"""The automatic rollback of a step that failed after its switch: back to the checkpoint, verified serving;
when that fails too, the result says where the backup is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obsplan.executor.recovery.restore import restore_point
from obsplan.executor.stages.step_results import Handled
from obsplan.executor.state.state_db import RollbackPoint

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def auto_rollback(r: StepRunner, exc: BaseException) -> None:
    """Restore `r.point` after `exc`; records the history rows and the step's result, then raises Handled."""
    assert r.point is not None and r.ctx.db is not None
    db, point = r.ctx.db, r.point
    error = str(exc)
    r.emit("auto_rollback_started", error=error, to_version=point.from_version)
    r.record_upgrade_failed(error)
    history = r.ctx.history(r.c, r.step.id)
    try:
        with r.stage("rollback"):
            restore_point(r, point)
    except Exception as rb_exc:  # noqa: BLE001 - report where the backup is, whatever went wrong
        history.record("auto_rollback", r.step.to_version, point.from_version, success=False, error=str(rb_exc))
        db.set_point_status(point.id, "failed")
        r.fail("rollback_failed", _failed_message(error, point, rb_exc), "rollback_failed", backup=point.backup_dir)
        raise Handled() from None
    history.record(
        "auto_rollback", r.step.to_version, point.from_version, success=True, error=f"rolled back after: {error}"
    )
    db.set_point_status(point.id, "used")
    row = db.installed(r.c)
    floor = row["floor"] if row is not None else None
    db.set_installed(
        r.c, point.from_version, previous=r.step.to_version, floor=floor, last_result="rolled_back", last_step=r.step.id
    )
    r.fail(
        getattr(exc, "reason", type(exc).__name__),
        f"{error} (automatically rolled back to {point.from_version or 'nothing installed'})",
        status="rolled_back",
        rolled_back_to=point.from_version,
    )
    raise Handled()


def _failed_message(error: str, point: RollbackPoint, rb_exc: BaseException) -> str:
    return (
        f"{error}; automatic rollback to {point.from_version or 'nothing'} FAILED too: {rb_exc}. "
        f"Backup of the previous unit/config: {point.backup_dir}; previous version directory: "
        f"{point.version_dir or '-'}; data directory: {point.data_dir or '-'}"
    )
