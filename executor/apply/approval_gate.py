"""`apply --auto`: which steps run without a person (approved in the lock or on this host) and which stay
pending, with every step that requires a pending one."""

from __future__ import annotations

from obsplan.executor.apply.approvals import host_approval
from obsplan.executor.apply.plan_queries import step_deps
from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_results import StepResult
from obsplan.executor.stages.step_runner import StepRunner

from obsplan.lock.lockfile import Step


def approval_gate(
    steps: list[Step], runners: dict[str, StepRunner], chains: dict[str, list[Step]], ctx: Context
) -> list[str]:
    """`--auto`: leave pending every step not approved (in the lock or on this host), not already done on the
    host and not interrupted mid-way by an earlier run, and every step that requires one (transitively,
    `requires` and the component's chain)."""
    waiting: dict[str, list[str]] = {}
    for s in steps:
        if s.approval is not None or host_approval(ctx.db, s) is not None:
            continue
        if ctx.db is not None and ctx.db.step_unfinished(s.id):
            continue  # started by an earlier run that was interrupted: finishing it is safer than leaving it half done
        if not runners[s.id].uptodate():
            waiting[s.id] = []
    changed = True
    while changed:
        changed = False
        for s in steps:
            if s.id in waiting or runners[s.id].result is not None:
                continue
            blocked = sorted(d for d in step_deps(s, chains) if d in waiting)
            if blocked and not runners[s.id].uptodate():
                waiting[s.id] = blocked
                changed = True
    for s in steps:
        if s.id not in waiting:
            continue
        reason = "requires_pending_approval" if waiting[s.id] else "pending_approval"
        runners[s.id].result = StepResult(s.id, s.component, "pending", reason, {"waiting_for": waiting[s.id]})
        runners[s.id].emit(
            "pending_approval",
            reason=reason,
            waiting_for=waiting[s.id],
            risk=s.risk,
            from_version=s.from_version,
            to_version=s.to_version,
        )
    return [s.id for s in steps if s.id in waiting]
