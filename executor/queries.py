"""Read-only questions about a host: `status` (installed, target, served, health) and `history`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from obsplan.executor.host.layout import APPLIED_LOCK, Layout
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import ObsplanError

if TYPE_CHECKING:
    import httpx

    from obsplan.lock.lockfile import ComponentLock, Lock, Step

# `status` on an empty root reads the layout and the state database only: the lock models, httpx and the step
# machinery are imported when there is a lock to read or a component to probe (tests/test_cli_shape.py).


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
    from obsplan.lock.lockfile import load_lock

    return load_lock(path)


def status(
    root: Path, lock_path: Path | None = None, services_kind: str = "auto", client: httpx.Client | None = None
) -> list[dict[str, Any]]:
    layout = Layout(root.resolve())
    lock = applied_lock(layout, lock_path)
    db = StateDB.open_for_reading(layout.db_path)
    try:
        rows = {r["component"]: r for r in db.all_installed()} if db else {}
        names = sorted(set(rows) | set(lock.components if lock else ()) | _linked(layout))
        if not names:
            return []
        return _rows(layout, lock, db, rows, names, services_kind, client)
    finally:
        if db:
            db.close()


def _rows(
    layout: Layout,
    lock: Lock | None,
    db: StateDB | None,
    rows: dict[str, Any],
    names: list[str],
    services_kind: str,
    client: httpx.Client | None,
) -> list[dict[str, Any]]:
    pending: dict[str, list[dict[str, Any]]] = {}
    if lock:
        from obsplan.executor.apply.approvals import pending_approvals

        pending = pending_approvals(lock, db, layout)
    probe = _Probe(layout, services_kind, client)
    try:
        out = []
        known = _known_components(layout, lock)
        for c in names:
            entry = _entry(layout, c, rows.get(c), pending.get(c, []))
            if c in known:
                _compare(entry, lock, known[c], layout, probe)
            out.append(entry)
        return out
    finally:
        probe.close()


def _entry(layout: Layout, c: str, row: Any, pending: list[dict[str, Any]]) -> dict[str, Any]:
    """What the host and the state database say about component `c`, before comparing with a lock."""
    return {
        "component": c,
        "installed_version": row["version"] if row else None,
        "host_version": layout.current_version(c),
        "target_version": None,
        "floor": row["floor"] if row else None,
        "last_result": row["last_result"] if row else None,
        "last_step": row["last_step"] if row else None,
        "health": "unknown",
        "served_version": None,
        "pending_approval": pending,
    }


def _linked(layout: Layout) -> set[str]:
    """Components with a `current` link under /opt/obsplan (obsplan manages them, whatever the state says)."""
    opt = layout.host("/opt/obsplan")
    if not opt.is_dir():
        return set()
    return {d.name for d in opt.iterdir() if not d.name.startswith(".") and layout.current_version(d.name)}


def _known_components(layout: Layout, lock: Lock | None) -> dict[str, ComponentLock]:
    """How to probe each component: the compared lock's definition, else the last applied lock's."""
    known: dict[str, ComponentLock] = {}
    applied = layout.state_dir / APPLIED_LOCK
    if applied.is_file():
        import contextlib

        from obsplan.lock.lockfile import load_lock

        with contextlib.suppress(ObsplanError):  # `doctor` names an unusable applied lock
            known.update(load_lock(applied).components)
    known.update(lock.components if lock else {})
    return known


def _compare(entry: dict[str, Any], lock: Lock | None, comp: ComponentLock, layout: Layout, probe: _Probe) -> None:
    """Fill `entry` with the lock's target, the served version, install problems and drift (every component
    with a definition, with or without a step in the lock)."""
    import obsplan.executor.host.drift as drift
    from obsplan.executor.host.integrity import install_problems

    c = entry["component"]
    in_lock = lock is not None and c in lock.components
    entry["target_version"] = comp.version if in_lock else None
    chain = [s for s in lock.plan.steps if s.component == c] if lock is not None else []
    served = probe.served_version(c, chain, comp)
    entry["served_version"] = served
    entry["health"] = "serving" if served else "down"
    entry["problems"] = install_problems(layout, c, comp.runtime, entry["host_version"])
    if entry["problems"]:
        entry["health"] = "broken"
    entry["drift"] = drift.detect(c, comp.runtime, layout, entry["served_version"])
    if entry["drift"] and not entry["problems"]:
        entry["health"] = "drift"  # changed by hand after obsplan installed it
    entry["up_to_date"] = (
        in_lock
        and entry["host_version"] == comp.version
        and entry["served_version"] == comp.version
        and not entry["problems"]
    )


class _Probe:
    """Asks a component which version it serves; the HTTP client and service manager are made on first use."""

    def __init__(self, layout: Layout, services_kind: str, client: httpx.Client | None) -> None:
        self.layout = layout
        self.services_kind = services_kind
        self.client = client
        self.own = client is None
        self.services: Any = None

    def served_version(self, c: str, chain: list[Step], comp: ComponentLock) -> str | None:
        from obsplan.executor.artifacts.store import HttpSource
        from obsplan.executor.host.probes import host_platform
        from obsplan.executor.host.stepfacts import StepFacts, step_outside_plan
        from obsplan.executor.reporters import Fanout
        from obsplan.executor.services.managers import make_service_manager
        from obsplan.executor.stages.step_context import Context

        if self.client is None:
            import httpx

            self.client = httpx.Client(timeout=3.0, trust_env=False)
        if self.services is None:
            self.services = make_service_manager(self.services_kind, self.layout)
        ctx = Context(
            layout=self.layout,
            db=None,
            reporter=Fanout(),
            services=self.services,
            client=self.client,
            source=HttpSource(self.client),
            run_id="status",
            platform=host_platform(),
            dry_run=True,
        )
        step = chain[-1] if chain else step_outside_plan(f"status:{c}", c, (None, comp.version), "status", "low")
        served: str | None = StepFacts(ctx, step, comp.runtime).served_version()
        return served

    def close(self) -> None:
        if self.own and self.client is not None:
            self.client.close()


def history(root: Path, component: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    layout = Layout(root.resolve())
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        return []
    with db:
        return [dict(r) for r in db.history(component, limit)]
