"""A host's result from the JSON events of its `obsplan apply --json` run and the run's status."""

from __future__ import annotations

from typing import Any

STEP_EVENTS = {
    "step_done": "ok",
    "up_to_date": "up_to_date",
    "step_failed": "failed",
    "rolled_back": "rolled_back",
    "rollback_failed": "rollback_failed",
    "step_skipped": "skipped",
    "pending_approval": "pending",
}


def judge(status: str, reason: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Per step its outcome; per component changed the version it ran before (its first step_done); a run
    failed only because the policy's soak held a step is `waiting`, with the longest time remaining."""
    steps: dict[str, str] = {}
    changed: dict[str, str | None] = {}
    soaking: list[dict[str, Any]] = []
    for e in events:
        meta = e.get("metadata") or {}
        step_status = STEP_EVENTS.get(e.get("event", ""))
        if step_status is None or "step" not in meta:
            continue
        steps[meta["step"]] = step_status
        if step_status == "ok" and e.get("component") not in changed:
            changed[e["component"]] = meta.get("from_version")
        if meta.get("reason") == "soaking":
            soaking.append(meta)
    if (
        status == "failed"
        and soaking
        and all(v != "failed" or s in {m["step"] for m in soaking} for s, v in steps.items())
    ):
        status, reason = "waiting", "; ".join(m.get("error", "") for m in soaking)
    waiting = max((float(m.get("remaining_seconds", 0)) for m in soaking), default=None)
    return {"status": status, "reason": reason, "steps": steps, "changed": changed, "waiting_seconds": waiting}
