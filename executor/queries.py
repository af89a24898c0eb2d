"""Read-only questions about a host: `status` (installed, target, served, health) and `history`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from obsplan.errors import ObsplanError
from obsplan.lockfile import Lock, load_lock

from . import drift
from .approvals import pending_approvals
from .artifacts import HttpSource
from .context import Context
from .facts import host_platform
from .integrity import install_problems
from .layout import APPLIED_LOCK, Layout
from .report import Fanout
from .services import make_service_manager
from .state import StateDB
from .steps import StepRunner


def last_applied_lock(root: Path) -> Path:
    """The copy of the lock the last apply under `root` used (for `obsplan resume` without LOCK)."""
    path = Layout(root.resolve()).state_dir / APPLIED_LOCK
    if not path.is_file():
        raise ObsplanError(
            f"nothing to resume under {root}: no applied lock at {path}",
            key="LOCK",
            hint="pass the lock file: obsplan resume LOCK",
        )
    return path


def applied_lock(layout: Layout, lock_path: Path | None) -> Lock | None:
    path = lock_path or layout.state_dir / APPLIED_LOCK
    if lock_path is None and not path.exists():
        return None
    return load_lock(path)


def status(
    root: Path, lock_path: Path | None = None, services_kind: str = "auto", client: httpx.Client | None = None
) -> list[dict[str, Any]]:
    layout = Layout(root.resolve())
    lock = applied_lock(layout, lock_path)
    db = StateDB.open_for_reading(layout.db_path)
    own = client is None
    client = client or httpx.Client(timeout=3.0, trust_env=False)
    try:
        rows = {r["component"]: r for r in db.all_installed()} if db else {}
        names = sorted(set(rows) | set(lock.components if lock else ()))
        pending = pending_approvals(lock, db, layout) if lock else {}
        services = make_service_manager(services_kind, layout)
        out = []
        for c in names:
            row = rows.get(c)
            entry: dict[str, Any] = {
                "component": c,
                "installed_version": row["version"] if row else None,
                "host_version": layout.current_version(c),
                "target_version": None,
                "floor": row["floor"] if row else None,
                "last_result": row["last_result"] if row else None,
                "last_step": row["last_step"] if row else None,
                "health": "unknown",
                "served_version": None,
                "pending_approval": pending.get(c, []),
            }
            if lock and c in lock.components:
                comp = lock.components[c]
                entry["target_version"] = comp.version
                chain = [s for s in lock.plan.steps if s.component == c]
                step = chain[-1] if chain else None
                if step is not None:
                    ctx = Context(
                        layout=layout,
                        db=None,
                        reporter=Fanout(),
                        services=services,
                        client=client,
                        source=HttpSource(client),
                        run_id="status",
                        platform=host_platform(),
                        dry_run=True,
                    )
                    runner = StepRunner(ctx, step, comp, chain)
                    served = runner.served_version()
                    entry["served_version"] = served
                    entry["health"] = "serving" if served else "down"
                entry["problems"] = install_problems(layout, c, comp.runtime, entry["host_version"])
                if entry["problems"]:
                    entry["health"] = "broken"
                entry["drift"] = drift.detect(c, comp.runtime, layout, entry["served_version"])
                if entry["drift"] and not entry["problems"]:
                    entry["health"] = "drift"  # changed by hand after obsplan installed it
                entry["up_to_date"] = (
                    entry["host_version"] == comp.version
                    and entry["served_version"] == comp.version
                    and not entry["problems"]
                )
            out.append(entry)
        return out
    finally:
        if db:
            db.close()
        if own:
            client.close()


def history(root: Path, component: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    layout = Layout(root.resolve())
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        return []
    with db:
        return [dict(r) for r in db.history(component, limit)]
