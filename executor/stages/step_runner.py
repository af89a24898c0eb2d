"""One upgrade step, as a sequence of journalled, idempotent stages (each in `stages/`).

    preflight → fetch → extract → precheck (the target's own config check) → rehearse (one-way steps) →
    checkpoint → activate (switch, restart, verify; auto-rollback) → finish

Each stage is journalled ("<stage>", "begin"/"end") and committed before and after it acts (`journal`), so a
SIGKILL at any instant is resumed by the next apply: finished stages find their facts in place (verified
download, extracted directory, pending rollback point) and the step is redone from there.
"""

from __future__ import annotations

import sqlite3
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obsplan.executor.artifacts.safe_extract import disk_full
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.reporters import now_iso
from obsplan.executor.stages import activate, checkpoint, done, extract, fetch, finish, precheck, preflight, rehearse
from obsplan.executor.stages.history_rows import HistoryRecorder
from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_journal import Stage, StepJournal
from obsplan.executor.stages.step_results import Handled, Status, StepFailed, StepResult
from obsplan.executor.state.state_db import RollbackPoint

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Artifact, ComponentLock, Step

STAGES: tuple[tuple[str, Callable[[StepRunner], None]], ...] = (
    ("preflight", preflight.run),
    ("fetch", fetch.run),
    ("extract", extract.run),
    ("precheck", precheck.run),
    ("rehearse", rehearse.run),
    ("checkpoint", checkpoint.run),
    ("activate", activate.run),
    ("finish", finish.run),
)


class StepRunner(StepFacts):
    """Runs one step's stages as doit actions and holds what they hand on (download, rollback point, result)."""

    def __init__(self, ctx: Context, step: Step, comp: ComponentLock, chain: list[Step]) -> None:
        super().__init__(ctx, step, comp.runtime)
        self.comp = comp
        self.chain = chain  # the steps of this component, in order
        self.result: StepResult | None = None
        self.point: RollbackPoint | None = None
        self.archive: Path | None = None
        self.started_at = now_iso()
        self.t0 = time.monotonic()
        self.artifact: Artifact | None = step.artifacts.get(ctx.platform)
        self.unverified: str | None = None  # set when the artifact was installed without sha256 verification
        self.journal = StepJournal(ctx, step.id, self.c)

    def stage(self, name: str) -> Stage:
        return self.journal.stage(name)

    @property
    def history(self) -> HistoryRecorder:
        """This step's history rows, timed from its start (`preflight`)."""
        assert self.ctx.db is not None
        return HistoryRecorder(self.ctx.db, self.ctx.run_id, self.c, self.step.id, self.started_at, self.t0)

    def uptodate(self) -> bool:
        """doit `uptodate`: the host agrees the step is done. Reads facts only."""
        link = self.ctx.layout.current_version(self.c)
        reason = done.reason(self, link)
        if reason is None:
            return False
        self.result = StepResult(self.step.id, self.c, "up_to_date", reason, {"version": link})
        self.emit("up_to_date", reason=reason, version=link)
        return True

    # -- doit actions ---------------------------------------------------------------------------------------
    def actions(self) -> list[Callable[[], bool]]:
        return [self._action(name, run) for name, run in STAGES]

    def _action(self, name: str, run: Callable[[StepRunner], None]) -> Callable[[], bool]:
        def action() -> bool:
            try:
                run(self)
            except Handled:
                return False
            except Exception as exc:  # noqa: BLE001 - every failure is recorded as the step's result
                self._failed(name, exc)
                return False
            return True

        action.__name__ = f"{self.step.id}:{name}"
        return action

    def _failed(self, name: str, exc: Exception) -> None:
        """Record a stage's exception as the step's failure; re-raise an OSError that is not a full disk."""
        if isinstance(exc, StepFailed):
            self.fail(exc.reason, str(exc), stage=name, **exc.detail)
        elif isinstance(exc, ObsplanError):
            self.fail(getattr(exc, "reason", type(exc).__name__), str(exc), stage=name)
        elif isinstance(exc, (OSError, sqlite3.OperationalError)):
            full = disk_full(exc, f"{name} of {self.step.id}")
            if full is None:
                raise exc
            self.fail(full.reason, f"{full} ({exc})", stage=name)
        else:  # a bug: recorded as a failed step (exit 3), never "interrupted"
            tb = traceback.format_exc()[-4000:]
            self.fail("internal_error", f"{type(exc).__name__}: {exc}", stage=name, traceback=tb)

    # -- failure ----------------------------------------------------------------------------------------------
    def fail(self, reason: str, message: str, status: Status = "failed", **detail: Any) -> None:
        self.result = StepResult(self.step.id, self.c, status, reason, {"error": message, **detail})
        self.emit("step_failed" if status == "failed" else status, reason=reason, error=message, **detail)
        if self.ctx.dry_run or self.ctx.db is None:
            return
        try:
            self._record_failure(status, message)
        except (OSError, sqlite3.OperationalError) as exc:
            if disk_full(exc, "recording") is None:
                raise
            self.emit("warning", code="disk_full", message=f"the failure could not be recorded in the state: {exc}")

    def _record_failure(self, status: Status, message: str) -> None:
        assert self.ctx.db is not None
        self.ctx.db.journal(self.ctx.run_id, self.step.id, self.c, "step", status, message[:2000])
        if status == "failed":  # rolled_back / rollback_failed have recorded their history already
            self.record_upgrade_failed(message)
        self.ctx.db.set_last_result(self.c, status, self.step.id)

    def record_upgrade_failed(self, error: str) -> None:
        """The one history row of an upgrade that did not complete (before or after its own rollback)."""
        self.history.record(
            "upgrade",
            self.step.from_version,
            self.step.to_version,
            success=False,
            error=error,
            unverified=self.unverified,
        )
