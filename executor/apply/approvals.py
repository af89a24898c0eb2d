"""Approvals for `apply --auto`: in the lock (policy) or on the host (`obsplan approve`), bound to a step's content."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from obsplan.executor.apply.plan_queries import component_chains, plan_path
from obsplan.executor.host.layout import APPLIED_LOCK, Layout
from obsplan.executor.reporters import AuditLog, Event
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Lock, Step
from obsplan.lock.review import load_reviewed_lock


def step_digest(step: Step) -> str:
    """What an approval on this host covers: every field of the step but the lock's own approval."""
    data = step.model_dump(mode="json", exclude={"approval"})
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def host_approval(db: StateDB | None, step: Step) -> Any:
    return db.approval(step.id, step_digest(step)) if db is not None else None


def _who() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def approve(root: Path, step_id: str, lock_path: Path | None = None, by: str | None = None) -> dict[str, Any]:
    """Record on this host that `step_id` of the lock may run under `apply --auto` (who and when, in `approvals`).

    The approval covers exactly this step's content (its digest): a re-planned step with the same id but other
    versions or artifacts needs approving again."""
    layout = Layout(root.resolve())
    path = lock_path or layout.state_dir / APPLIED_LOCK
    if lock_path is None and not path.is_file():
        raise ObsplanError(
            f"no applied lock under {layout.root} to find {step_id!r} in",
            key="--lock",
            hint="pass the lock that holds the step: obsplan approve STEP_ID --lock LOCK",
        )
    lock = load_reviewed_lock(path)
    step = next((s for s in lock.plan.steps if s.id == step_id), None)
    if step is None:
        known = ", ".join(s.id for s in lock.plan.steps) or "none"
        raise ObsplanError(
            f"no step {step_id!r} in the lock", file=str(path), key="STEP_ID", hint=f"known step ids: {known}"
        )
    digest = step_digest(step)
    with StateDB(layout.db_path) as db:
        prior = db.approval(step.id, digest)
        if prior is None:
            db.approve(step.id, digest, lock.content_sha256, by or _who())
        row = db.approval(step.id, digest)
    assert row is not None
    info = {
        "step": step.id,
        "component": step.component,
        "from_version": step.from_version,
        "to_version": step.to_version,
        "risk": step.risk,
        "approved_by": row["approved_by"],
        "approved_at": row["approved_at"],
        "already_approved": prior is not None,
        "lock": str(path),
        "lock_approval": step.approval,
    }
    audit = AuditLog(layout.audit_path)
    try:
        audit.emit(Event(step.component, "approved", info))
    finally:
        audit.close()
    return info


def pending_approvals(lock: Lock, db: StateDB | None, layout: Layout) -> dict[str, list[dict[str, Any]]]:
    """Per component: steps `apply --auto` would leave pending (not approved anywhere, not reached by the host)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for c, chain in component_chains(lock).items():
        path = plan_path(chain)
        host = layout.current_version(c)
        reached = path.index(host) if host in path else -1
        for i, s in enumerate(chain):
            if i + 1 <= reached or s.approval is not None or host_approval(db, s) is not None:
                continue
            out.setdefault(c, []).append(
                {
                    "step": s.id,
                    "from_version": s.from_version,
                    "to_version": s.to_version,
                    "risk": s.risk,
                    "priority": s.priority,
                }
            )
    return out
