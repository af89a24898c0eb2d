"""`HistoryRecorder`: the rows of `upgrade_history` for one step of one component in one run.

It is bound to the state database, the run, the component and the step, and its clock starts when it is made,
so each row names only what differs: its kind, the versions it went between, and the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from obsplan.executor.reporters import now_iso
from obsplan.executor.state.state_db import StateDB


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
