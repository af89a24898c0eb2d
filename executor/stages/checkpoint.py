"""Stage 4, checkpoint: a rollback point taken before anything is switched (the previous version, copies of
the unit, config and credential files), or an install obsplan did not make adopted as one."""

from __future__ import annotations

import obsplan.executor.host.adopt_install as adopt
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.recovery.backups import backup_files
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import CheckpointResult
from obsplan.executor.state.state_db import RollbackPoint


def run(facts: StepFacts, journal: StepJournal, pending: RollbackPoint | None) -> CheckpointResult:
    """The step's rollback point: `pending` (taken before a crash, found by preflight), else adopted or taken."""
    ctx = facts.ctx
    if ctx.dry_run:
        facts.emit("would_checkpoint", previous=ctx.layout.current_version(facts.c), floor=facts.step.rollback_floor)
        return CheckpointResult(None, "dry_run")
    assert ctx.db is not None
    with journal.stage("checkpoint"):
        if pending is not None:  # resumed: the point was taken before the crash, keep it
            facts.emit("checkpoint_resumed", point=pending.id, previous=pending.from_version)
            return CheckpointResult(pending, "resumed")
        adopted = adopt.adopt(ctx, facts)  # an install obsplan did not make: kept as point `adopted`
        if adopted is not None:
            return CheckpointResult(adopted, "adopted")
        return CheckpointResult(_take_point(facts), "taken")


def _take_point(facts: StepFacts) -> RollbackPoint:
    ctx, c, rt = facts.ctx, facts.c, facts.runtime
    assert ctx.db is not None
    layout = ctx.layout
    previous = layout.current_version(c)
    backup, files = backup_files(ctx, c, rt, facts.step.id)
    row = ctx.db.installed(c)
    floor = row["floor"] if row is not None else None
    pid = ctx.db.add_point(
        component=c,
        step_id=facts.step.id,
        from_version=previous,
        to_version=facts.step.to_version,
        version_dir=str(layout.version_dir(c, previous)) if previous else None,
        backup_dir=str(backup),
        files=files,
        data_dir=str(layout.host(rt.data_dir)) if rt.data_dir else None,
        floor=floor,
        status="pending",
    )
    point = ctx.db.point(pid)
    assert point is not None
    facts.emit(
        "checkpoint",
        point=pid,
        previous=previous,
        backup=str(backup),
        files=files,
        data_dir=point.data_dir,
        floor=floor,
    )
    return point
