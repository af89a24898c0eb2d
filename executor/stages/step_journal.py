"""The step journal: each stage is journalled ("<stage>", "begin"/"end"/"error") and committed before and after
it acts, so a SIGKILL at any instant is resumed by the next apply from the facts in place.

Test hook: `OBSPLAN_TEST_KILL_AT=<stage>:<begin|end>` (e.g. `switch:end`) makes the executor SIGKILL itself
right after that journal record is committed. Tests use it to prove crash convergence; never set it otherwise.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Any

from obsplan.executor.stages.step_results import StepEnded

if TYPE_CHECKING:
    from obsplan.executor.stages.step_context import Context

KILL_ENV = "OBSPLAN_TEST_KILL_AT"


def kill_hook(point: str) -> None:
    """Test hook (see module docstring): SIGKILL this process at the named journal point."""
    if os.environ.get(KILL_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class StepJournal:
    """The journal records of one step (none in a dry run or without a state database)."""

    def __init__(self, ctx: Context, step_id: str, component: str) -> None:
        self.ctx, self.step_id, self.component = ctx, step_id, component

    def record(self, stage: str, status: str, detail: str = "") -> None:
        if self.ctx.db is not None and not self.ctx.dry_run:
            self.ctx.db.journal(self.ctx.run_id, self.step_id, self.component, stage, status, detail)
            kill_hook(f"{stage}:{status}")

    def stage(self, name: str) -> Stage:
        return Stage(self, name)


class Stage:
    """`with journal.stage(name):` records begin, then end, or the error (not for an already handled failure)."""

    def __init__(self, journal: StepJournal, name: str) -> None:
        self.journal, self.name = journal, name

    def __enter__(self) -> None:
        self.journal.record(self.name, "begin")

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.journal.record(self.name, "end")
        elif not isinstance(exc, StepEnded):
            self.journal.record(self.name, "error", str(exc)[:2000])
