"""A step's outcome as values: what each stage produced (a frozen result, handed by the runner to the stages
after it), the step's record built from them (`StepResult`), and the exceptions a stage raises to end its step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from obsplan.executor.checks.config_verdict import Verdict
    from obsplan.executor.state.state_db import RollbackPoint

    from obsplan.lock.lockfile import Artifact

# "pending": not approved for `apply --auto` (or requires such a step); not a failure
Status = Literal["ok", "up_to_date", "failed", "rolled_back", "rollback_failed", "skipped", "would_run", "pending"]


@dataclass(frozen=True)
class PreflightResult:
    """The step can run here: the artifact for this platform, the host's version, and a rollback point a
    crashed run took for this step already (the step resumes from it)."""

    artifact: Artifact
    host_version: str | None
    pending: RollbackPoint | None


@dataclass(frozen=True)
class FetchResult:
    """The verified archive (None in a dry run) and the artifact as installed: with `--allow-unverified`, it
    carries the digest of the fetched bytes and `unverified` says so (recorded in the history)."""

    artifact: Artifact
    archive: Path | None
    fetched: bool = False  # False: found cached (or a dry run)
    unverified: str | None = None


@dataclass(frozen=True)
class ExtractResult:
    target: Path  # the version's directory
    extracted: bool  # False: in place already (or a dry run)
    binary_version: str | None = None  # what the extracted service binary reports (None: it reports none)


@dataclass(frozen=True)
class PrecheckResult:
    verdict: Verdict | None  # None: the target has no checker, or no configuration to check


@dataclass(frozen=True)
class RehearsalResult:
    rehearsed: bool
    observed: dict[str, object] = field(default_factory=dict)  # port, held series, copied files, seconds


@dataclass(frozen=True)
class CheckpointResult:
    """The rollback point the switch can go back to (None in a dry run), and how it came: taken now, resumed
    from a crashed run, or an install obsplan did not make adopted as one."""

    point: RollbackPoint | None
    how: Literal["taken", "resumed", "adopted", "dry_run"]


@dataclass(frozen=True)
class ActivateResult:
    version: str
    verified: tuple[str, ...] = ()  # the policy's verify expressions that held after the switch
    dry_run: bool = False


@dataclass(frozen=True)
class FinishResult:
    """What the finish stage recorded: the versions gone between, the rollback floor, what retention removed."""

    previous: str | None
    version: str
    floor: str | None
    removed: list[str] = field(default_factory=list)


@dataclass
class StepResult:
    """A step's outcome as a value: the reporter and the exit code are derived from these."""

    step_id: str
    component: str
    status: Status
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rolled_back", "rollback_failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_id,
            "component": self.component,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
        }


def step_record(step_id: str, component: str, finished: FinishResult | None) -> StepResult:
    """The record of a step whose stages all ran: upgraded, from the finish stage's result; without one (a dry
    run), what would run."""
    if finished is None:
        return StepResult(step_id, component, "would_run", "dry_run")
    detail = {"from": finished.previous, "to": finished.version, "floor": finished.floor, "removed": finished.removed}
    return StepResult(step_id, component, "ok", "upgraded", detail)


class StepFailed(Exception):
    """A stage's refusal or failure: `reason` is the result's reason, `detail` goes into the result and event."""

    def __init__(self, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


class StepEnded(Exception):
    """A stage ended its step with an outcome it has recorded itself (rolled back, or the rollback failed too):
    the runner makes it the step's result as it is (`status`, `reason`, `detail`)."""

    def __init__(self, status: Status, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.detail = detail
