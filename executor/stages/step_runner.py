"""One upgrade step, as a sequence of journalled, idempotent stages (each in `stages/`).

    preflight → fetch → extract → precheck (the target's own config check) → rehearse (one-way steps) →
    checkpoint → activate (switch, restart, verify; auto-rollback) → finish

Each stage is a function of what it needs (the step's facts, its journal, the results of the stages before it)
that returns what it produced, a frozen result (`step_results.py`); the runner hands each result on and builds
the step's record from them. Each stage is journalled ("<stage>", "begin"/"end") and committed before and after
it acts (`journal`), so a SIGKILL at any instant is resumed by the next apply: finished stages find their facts
in place (verified download, extracted directory, pending rollback point) and the step is redone from there.
"""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from obsplan.executor.artifacts.safe_extract import disk_full
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.stages import activate, checkpoint, done, extract, fetch, finish, precheck, preflight, rehearse
from obsplan.executor.stages.history_rows import HistoryRecorder, StepClock, record_upgrade_failed
from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import (
    ActivateResult,
    CheckpointResult,
    ExtractResult,
    FetchResult,
    PrecheckResult,
    PreflightResult,
    RehearsalResult,
    Status,
    StepEnded,
    StepFailed,
    StepResult,
    step_record,
)

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import ComponentLock, Step


@dataclass(frozen=True)
class Produced:
    """The results the stages of a step produced so far (a stage's is set once it has run)."""

    preflight: PreflightResult | None = None
    fetch: FetchResult | None = None
    extract: ExtractResult | None = None
    precheck: PrecheckResult | None = None
    rehearse: RehearsalResult | None = None
    checkpoint: CheckpointResult | None = None
    activate: ActivateResult | None = None


class StepRunner:
    """Runs one step's stages as doit actions: hands each stage the facts and the results it needs, keeps what
    they produce (`produced`), and holds the step's outcome (`result`)."""

    def __init__(self, ctx: Context, step: Step, comp: ComponentLock, chain: list[Step]) -> None:
        self.facts = StepFacts(ctx, step, comp.runtime)
        self.comp = comp
        self.chain = chain  # the steps of this component, in order
        self.clock = StepClock()  # started by the first stage, or the first row recorded before it
        self.journal = StepJournal(ctx, step.id, step.component)
        self.produced = Produced()
        self.result: StepResult | None = None

    @property
    def ctx(self) -> Context:
        return self.facts.ctx

    @property
    def step(self) -> Step:
        return self.facts.step

    @property
    def c(self) -> str:
        return self.facts.c

    def emit(self, event: str, **metadata: Any) -> None:
        self.facts.emit(event, **metadata)

    def history(self) -> HistoryRecorder:
        """This step's history rows, timed from its start (`preflight`)."""
        assert self.ctx.db is not None
        return self.clock.history(self.ctx.db, self.ctx.run_id, self.c, self.step.id)

    def uptodate(self) -> bool:
        """doit `uptodate`: the host agrees the step is done. Reads facts only."""
        link = self.ctx.layout.current_version(self.c)
        reason = done.reason(self.facts, self.chain, link)
        if reason is None:
            return False
        self.result = StepResult(self.step.id, self.c, "up_to_date", reason, {"version": link})
        self.emit("up_to_date", reason=reason, version=link)
        return True

    # -- the stages, each handed what it needs --------------------------------------------------------------
    def _preflight(self) -> None:
        self.clock.start()
        self.produced = replace(self.produced, preflight=preflight.run(self.facts, self.journal, self.chain))

    def _fetch(self) -> None:
        self.produced = replace(self.produced, fetch=fetch.run(self.facts, self.journal, self._preflighted.artifact))

    def _extract(self) -> None:
        self.produced = replace(self.produced, extract=extract.run(self.facts, self.journal, self._fetched))

    def _precheck(self) -> None:
        verdict = precheck.run(self.facts, self.journal, self._fetched.artifact)
        self.produced = replace(self.produced, precheck=verdict)

    def _rehearse(self) -> None:
        self.produced = replace(self.produced, rehearse=rehearse.run(self.facts, self.journal))

    def _checkpoint(self) -> None:
        point = checkpoint.run(self.facts, self.journal, self._preflighted.pending)
        self.produced = replace(self.produced, checkpoint=point)

    def _activate(self) -> None:
        switched = activate.run(self.facts, self.journal, self.clock, self._checkpointed, self._fetched)
        self.produced = replace(self.produced, activate=switched)

    def _finish(self) -> None:
        finished = finish.run(self.facts, self.journal, self.clock, self._checkpointed, self._fetched)
        self.result = step_record(self.step.id, self.c, finished)

    @property
    def _preflighted(self) -> PreflightResult:
        assert self.produced.preflight is not None
        return self.produced.preflight

    @property
    def _fetched(self) -> FetchResult:
        assert self.produced.fetch is not None
        return self.produced.fetch

    @property
    def _checkpointed(self) -> CheckpointResult:
        assert self.produced.checkpoint is not None
        return self.produced.checkpoint

    # -- doit actions ---------------------------------------------------------------------------------------
    def actions(self) -> list[Callable[[], bool]]:
        return [self._action(name, run) for name, run in STAGES]

    def _action(self, name: str, run: Callable[[StepRunner], None]) -> Callable[[], bool]:
        def action() -> bool:
            try:
                run(self)
            except StepEnded as ended:
                self.fail(ended.reason, str(ended), ended.status, **ended.detail)
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
            unverified = self.produced.fetch.unverified if self.produced.fetch is not None else None
            record_upgrade_failed(self.history(), self.step, message, unverified)
        self.ctx.db.set_last_result(self.c, status, self.step.id)


STAGES: tuple[tuple[str, Callable[[StepRunner], None]], ...] = (
    ("preflight", StepRunner._preflight),
    ("fetch", StepRunner._fetch),
    ("extract", StepRunner._extract),
    ("precheck", StepRunner._precheck),
    ("rehearse", StepRunner._rehearse),
    ("checkpoint", StepRunner._checkpoint),
    ("activate", StepRunner._activate),
    ("finish", StepRunner._finish),
)
