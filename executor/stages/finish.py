"""Stage 8, finish: the upgrade recorded (history, installed version, rollback floor, the point made
available) in one transaction, then retention."""

from __future__ import annotations

from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.recovery.retention import retention
from obsplan.executor.stages.history_rows import StepClock
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import CheckpointResult, FetchResult, FinishResult

from obsplan.kernel.versions import highest_floor


def run(
    facts: StepFacts, journal: StepJournal, clock: StepClock, checkpoint: CheckpointResult, fetched: FetchResult
) -> FinishResult | None:
    """Record the upgrade from the earlier stages' results (the point it started from, whether the artifact was
    verified), timed by the step's `clock`; None in a dry run (nothing is recorded)."""
    ctx, step = facts.ctx, facts.step
    if ctx.dry_run:
        return None
    assert ctx.db is not None and checkpoint.point is not None
    previous = checkpoint.point.from_version
    with journal.stage("finish"):
        floor = _floor(facts)
        _record(facts, clock, checkpoint, fetched, floor)
        removed = retention(ctx, facts.c)
    facts.emit(
        "step_done", from_version=previous, to_version=step.to_version, duration=clock.elapsed(), removed=removed
    )
    return FinishResult(previous, step.to_version, floor, removed)


def _floor(facts: StepFacts) -> str | None:
    """The higher of the recorded rollback floor and this step's."""
    assert facts.ctx.db is not None
    row = facts.ctx.db.installed(facts.c)
    floors = [f for f in (row["floor"] if row is not None else None, facts.step.rollback_floor) if f]
    return highest_floor(floors)


def _record(
    facts: StepFacts, clock: StepClock, checkpoint: CheckpointResult, fetched: FetchResult, floor: str | None
) -> None:
    ctx, step, c, point = facts.ctx, facts.step, facts.c, checkpoint.point
    assert ctx.db is not None and point is not None
    db, previous = ctx.db, point.from_version
    with db.transaction():
        history = clock.history(db, ctx.run_id, c, step.id)
        history.record("upgrade", previous, step.to_version, success=True, unverified=fetched.unverified)
        db.set_point_status(point.id, "available" if previous else "initial")
        db.set_installed(c, step.to_version, previous=previous, floor=floor, last_result="ok", last_step=step.id)
        db.journal(ctx.run_id, step.id, c, "step", "done", step.to_version)
