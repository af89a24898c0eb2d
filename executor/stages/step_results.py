"""A step's outcome as a value (`StepResult`), and the exceptions a stage raises to end its step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# "pending": not approved for `apply --auto` (or requires such a step); not a failure
Status = Literal["ok", "up_to_date", "failed", "rolled_back", "rollback_failed", "skipped", "would_run", "pending"]


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


class StepFailed(Exception):
    """A stage's refusal or failure: `reason` is the result's reason, `detail` goes into the result and event."""

    def __init__(self, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


class Handled(Exception):
    """Raised after a failure was recorded, to stop the remaining stages."""
