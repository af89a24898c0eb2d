"""Apply meets a hand-placed version the lock's path allows (the target, or a step on the way): it is
accepted as installed (`accept`), said as seed 003 says it ("prometheus already at 3.8.1 (manually upgraded),
skipping"), and the run goes on from there: the steps up to that version are up to date, later ones run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import obsplan.executor.host.accept as accept
from obsplan.executor.stages.step_results import StepResult

from obsplan.kernel.versions import highest_floor
from obsplan.lock.lockfile import Step

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def accept_on_path(runner: StepRunner, mine: list[Step], runners: dict[str, StepRunner]) -> bool:
    """Accept the hand-placed version of `runner`'s component when the lock's path allows it; True if so.
    `mine`: the run's steps of the component not decided yet."""
    found = accept.hand_placed(runner.facts)
    path = [s.to_version for s in runner.chain]
    if found is None or found[1] not in path:
        return False
    binary, version = found
    assert version is not None
    ctx, c, idx = runner.ctx, runner.c, path.index(version)
    if ctx.dry_run:
        ctx.emit(c, "would_accept_manual_change", version=version, binary=str(binary))
    else:
        accept.accept(runner.facts, binary, version, _floor(runner, runner.chain[: idx + 1]))
    serving = runner.facts.served_version(version) == version
    for s in mine:
        if runner.chain.index(s) < idx or (runner.chain.index(s) == idx and serving):
            runners[s.id].result = StepResult(s.id, c, "up_to_date", accept.MANUAL, {"version": version})
            runners[s.id].emit("up_to_date", reason=accept.MANUAL, version=version)
    message = (
        f"{c} already at {version} (manually upgraded), skipping"
        if serving
        else f"{c} {version} was placed by hand but does not serve yet; its step restarts it under obsplan"
    )
    ctx.emit(c, accept.MANUAL, version=version, serving=serving, message=message)
    return True


def _floor(runner: StepRunner, passed: list[Step]) -> str | None:
    """The highest of the recorded rollback floor and those of the steps the hand change went past."""
    row = runner.ctx.db.installed(runner.c) if runner.ctx.db is not None else None
    floors = [f for f in [row["floor"] if row is not None else None, *(s.rollback_floor for s in passed)] if f]
    return highest_floor(floors)
