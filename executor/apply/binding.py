"""Apply-time binding that follows the matrix: when the host runs another version than the plan assumed, the
step that goes up from the host's version runs if the lock does not refuse that start (`Step.refuse_from`,
written by the compiler from the matrix: no required hop skipped, no rollback floor crossed, no downgrade
unless pinned; a step without `refuse_from` accepts only the plan's own path). The earlier steps of the chain are already past; a `host_drift` row goes into the history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obsplan.executor.stages.step_results import StepResult

from obsplan.kernel.versions import version_or_none
from obsplan.lock.lockfile import FromRefusal, Step

if TYPE_CHECKING:
    from obsplan.executor.stages.step_context import Context
    from obsplan.executor.stages.step_runner import StepRunner


def refusal(step: Step, host: str | None) -> FromRefusal | None:
    """The lock's reason this step may not start from `host`, or None (nothing installed is always a start)."""
    v = version_or_none(host)
    if v is None:
        return None
    return next((r for r in step.refuse_from or [] if r.versions.contains(v)), None)


def start_step(chain: list[Step], selected: set[str], host: str | None) -> Step | None:
    """The selected step that moves the component up from `host` (the last one when none is above it)."""
    steps = [s for s in chain if s.id in selected]
    if not steps:
        return None
    v = version_or_none(host)
    above = [s for s in steps if v is None or (s.to_value or v) > v]
    return above[0] if above else steps[-1]


def accept_drift(
    chain: list[Step], selected: set[str], host: str | None, how: str, runners: dict[str, StepRunner], ctx: Context
) -> bool:
    """True when the run may go on from `host` (recorded); False: refused as off the plan's path."""
    start = start_step(chain, selected, host)
    if start is None or start.refuse_from is None or (host is not None and version_or_none(host) is None):
        return False
    c, assumed = start.component, chain[0].from_version
    why = refusal(start, host)
    if why is not None:
        ctx.emit(
            c,
            "host_drift_refused",
            step=start.id,
            host_version=host,
            rule=why.rule,
            reason=why.reason,
            versions=why.versions,
        )
        return False
    for s in chain[: chain.index(start)]:
        if s.id in selected and runners[s.id].result is None:
            runners[s.id].result = StepResult(s.id, c, "up_to_date", "host_past", {"host_version": host})
            runners[s.id].emit("up_to_date", reason="host_past", version=host)
    ctx.accepted_from[c] = host
    detail = (
        f"plan assumed {c} {assumed or 'nothing installed'}; host runs {host or 'nothing'} ({how}); "
        f"step {start.id} runs from {host or 'nothing'} (allowed by the matrix)"
    )
    ctx.emit(c, "host_drift", step=start.id, assumed=assumed, host_version=host, observed_by=how, detail=detail)
    runners[start.id].facts.record_host(host, how)
    if ctx.db is not None and not ctx.dry_run:
        ctx.history(c, start.id, timed=False).record("host_drift", assumed, host, success=True, error=detail)
    return True
