"""`Context`: everything a step needs from the run (layout, state, reporter, services, options), injected by
the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from obsplan.executor.host.layout import Layout
from obsplan.executor.reporters import Event, Reporter
from obsplan.executor.services.service_manager import ServiceManager
from obsplan.executor.stages.history_rows import HistoryRecorder
from obsplan.executor.state.state_db import StateDB

from obsplan.lock.lockfile import HostPolicy

if TYPE_CHECKING:
    from obsplan.executor.artifacts.store import ArtifactSource

HEALTH_WINDOW = {"safe": 120.0, "standard": 60.0, "fast": 20.0}


@dataclass
class Context:
    """Everything a step needs, injected by the engine."""

    layout: Layout
    db: StateDB | None  # None only in a dry run on a root never applied to
    reporter: Reporter
    services: ServiceManager
    client: httpx.Client
    source: ArtifactSource
    run_id: str
    platform: str
    mode: str = "standard"
    dry_run: bool = False
    force: bool = False
    rehearse: bool = False  # rehearse one-way steps (as `safe` mode does)
    health_timeout: float | None = None
    keep_versions: int = 3
    keep_days: float = 30.0
    allow_unverified: bool = False  # install artifacts the lock has no sha256 for (loud, recorded in history)
    accepted_from: dict[str, str | None] = field(default_factory=dict)  # component → host version binding accepted
    policy: HostPolicy = field(default_factory=HostPolicy)  # the lock's host_policy (archive limits, deadline)
    verify_url: str | None = None  # the Prometheus the policy's verify expressions are asked (postverify)

    @property
    def window(self) -> float:
        return self.health_timeout if self.health_timeout is not None else HEALTH_WINDOW[self.mode]

    def emit(self, component: str | None, event: str, **metadata: Any) -> None:
        self.reporter.emit(Event(component, event, metadata))

    def history(self, component: str, step_id: str | None, timed: bool = True) -> HistoryRecorder:
        """A recorder of this run's history rows for `component`'s step, its clock started now."""
        assert self.db is not None
        return HistoryRecorder(self.db, self.run_id, component, step_id, timed=timed)
