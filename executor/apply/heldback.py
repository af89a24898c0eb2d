"""The closing word on a partly failed run (seed 003: "re-run only retries the failed component"): which steps
were held back, and by what. A step is held back only by a step it really requires (its component's previous
hop, a matrix requirement): the other phases' steps run whatever failed elsewhere."""

from __future__ import annotations

from obsplan.executor.stages.step_results import StepResult

HELD = ("requires_not_done", "dependency_failed")
DONE = ("ok", "up_to_date", "would_run")


def name_requirements(results: dict[str, StepResult | None], needs: dict[str, set[str]]) -> None:
    """A step doit skipped because a step of its phase failed (`dependency_failed`) learns which: the steps it
    requires that did not finish, in its result's `requires` (as `requires_not_done` already has)."""
    for sid, r in results.items():
        if r is not None and r.reason == "dependency_failed" and "requires" not in r.detail:
            undone = [d for d in sorted(needs.get(sid, ())) if (dr := results.get(d)) is None or dr.status not in DONE]
            r.detail["requires"] = undone


def held_back(results: list[StepResult]) -> list[dict[str, object]]:
    """One entry per step skipped because a step it requires did not finish: the step, and each requirement
    with what happened to it in this run (`failed`, `rolled_back`, ..., or `not done on this host`)."""
    status = {r.step_id: r for r in results}
    out: list[dict[str, object]] = []
    for r in results:
        if r.reason not in HELD:
            continue
        because = {}
        for dep in r.detail.get("requires", []):
            d = status.get(dep)
            because[dep] = "not done on this host" if d is None else (d.reason or d.status)
            if d is not None and d.status != "skipped":
                because[dep] = d.status if not d.reason else f"{d.status}: {d.reason}"
        out.append({"step": r.step_id, "component": r.component, "because": because})
    return out


def summary_lines(results: list[StepResult]) -> list[str]:
    """After a run with failures: `failed: STEP (status: reason)`, `held back: STEP (requires DEP: what
    happened to it)` for each step that needed a failed or undone one, and the steps that went ahead."""
    failed = [f"failed: {r.step_id} ({r.status}: {r.reason})" for r in results if r.failed]
    held = []
    for entry in held_back(results):
        why = "; ".join(f"{dep}: {what}" for dep, what in entry["because"].items())  # type: ignore[attr-defined]
        held.append(f"held back: {entry['step']} (requires {why})")
    if not failed and not held:
        return []
    ran = [r.step_id for r in results if r.status in DONE]
    went = f"went ahead: {', '.join(ran) if ran else 'nothing'} (they do not depend on what failed)"
    return failed + held + [went]
