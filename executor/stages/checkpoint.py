"""Stage 4, checkpoint: a rollback point taken before anything is switched (the previous version, copies of
the unit, config and credential files), or an install obsplan did not make adopted as one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import obsplan.executor.host.adopt_install as adopt
from obsplan.executor.recovery.backups import backup_files

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def run(r: StepRunner) -> None:
    layout = r.ctx.layout
    if r.ctx.dry_run:
        r.emit("would_checkpoint", previous=layout.current_version(r.c), floor=r.step.rollback_floor)
        return
    assert r.ctx.db is not None
    with r.stage("checkpoint"):
        if r.point is not None:  # resumed: the point was taken before the crash, keep it
            r.emit("checkpoint_resumed", point=r.point.id, previous=r.point.from_version)
            return
        adopted = adopt.adopt(r.ctx, r)  # an install obsplan did not make: kept as point `adopted`
        if adopted is not None:
            r.point = adopted
            return
        _take_point(r)


def _take_point(r: StepRunner) -> None:
    assert r.ctx.db is not None
    layout = r.ctx.layout
    previous = layout.current_version(r.c)
    backup, files = backup_files(r.ctx, r.c, r.runtime, r.step.id)
    row = r.ctx.db.installed(r.c)
    floor = row["floor"] if row is not None else None
    pid = r.ctx.db.add_point(
        component=r.c,
        step_id=r.step.id,
        from_version=previous,
        to_version=r.step.to_version,
        version_dir=str(layout.version_dir(r.c, previous)) if previous else None,
        backup_dir=str(backup),
        files=files,
        data_dir=str(layout.host(r.runtime.data_dir)) if r.runtime.data_dir else None,
        floor=floor,
        status="pending",
    )
    r.point = r.ctx.db.point(pid)
    data_dir = r.point.data_dir if r.point else None
    r.emit("checkpoint", point=pid, previous=previous, backup=str(backup), files=files, data_dir=data_dir, floor=floor)
