"""`HistoryRecorder`: the rows of `upgrade_history` for one step of one component in one run, and `StepClock`,
the one clock that times a step's rows.

A recorder is bound to the state database, the run, the component and the step, and its clock starts when it is
made (or is the step's `StepClock`), so each row names only what differs: its kind, the versions it went between,
and the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from obsplan.executor.reporters import now_iso
from obsplan.executor.state.state_db import StateDB

from obsplan.lock.lockfile import Step


@dataclass
class HistoryRecorder:
    db: StateDB
    run_id: str
    component: str
    step_id: str | None
    started_at: str = field(default_factory=now_iso)
    t0: float = field(default_factory=time.monotonic)
    timed: bool = True  # False: rows without a duration (what was observed, not what obsplan did)

    def record(
        self,
        kind: str,
        from_version: str | None,
        to_version: str | None,
        *,
        success: bool,
        error: str | None = None,
        unverified: str | None = None,
    ) -> None:
        self.db.add_history(
            run_id=self.run_id,
            component=self.component,
            step_id=self.step_id,
            kind=kind,
            from_version=from_version,
            to_version=to_version,
            success=success,
            started_at=self.started_at,
            error=error,
            duration=time.monotonic() - self.t0 if self.timed else None,
            unverified=unverified,
        )


class StepClock:
    """When one step started: started once, at its first stage (or at the first row recorded for it before that),
    and never reset afterwards."""

    def __init__(self) -> None:
        self._start: tuple[str, float] | None = None

    def start(self) -> None:
        """Start the clock; a no-op when it runs already."""
        if self._start is None:
            self._start = (now_iso(), time.monotonic())

    @property
    def started_at(self) -> str:
        self.start()
        assert self._start is not None
        return self._start[0]

    @property
    def t0(self) -> float:
        self.start()
        assert self._start is not None
        return self._start[1]

    def elapsed(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def history(self, db: StateDB, run_id: str, component: str, step_id: str) -> HistoryRecorder:
        """A recorder of the step's history rows, timed from the step's start."""
        return HistoryRecorder(db, run_id, component, step_id, self.started_at, self.t0)


def record_upgrade_failed(history: HistoryRecorder, step: Step, error: str, unverified: str | None) -> None:
    """The one history row of an upgrade that did not complete (before or after its own rollback)."""
    history.record("upgrade", step.from_version, step.to_version, success=False, error=error, unverified=unverified)
