"""`obsplan rollback`: back to a rollback point or an installed version, never below the floor, verified serving."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from obsplan.errors import EXIT_USAGE, ObsplanError
from obsplan.lockfile import Lock, Step

from . import adopt
from .engine import ApplyOptions, make_context, with_host_policy
from .hostlock import apply_lock
from .layout import Layout
from .metrics import write_metrics
from .queries import applied_lock
from .report import AuditLog, Fanout, Reporter, now_iso
from .services import make_service_manager
from .state import StateDB
from .steps import Context, StepResult, StepRunner, restore_point, version_below


def rollback_list(root: Path, component: str) -> dict[str, Any]:
    layout = Layout(root.resolve())
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        return {"component": component, "points": [], "versions": [], "current": None, "floor": None}
    with db:
        row = db.installed(component)
        floor = row["floor"] if row else None
        points = [
            dict(p.to_dict(), below_floor=bool(p.from_version and version_below(p.from_version, floor)))
            for p in db.points(component, ("available", "initial", "used"))
        ]
    cdir = layout.component_dir(component)
    versions = sorted(
        (d.name for d in cdir.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith("."))
        if cdir.is_dir()
        else []
    )
    return {
        "component": component,
        "current": layout.current_version(component),
        "floor": floor,
        "points": points,
        "versions": [{"version": v, "below_floor": version_below(v, floor)} for v in versions],
    }


def rollback(
    root: Path,
    component: str,
    to: str | None,
    reporter: Reporter,
    service_manager: str = "auto",
    mode: str = "standard",
    health_timeout: float | None = None,
    client: httpx.Client | None = None,
) -> StepResult:
    """Switch `component` back to a rollback point (`to` = point id or None for the newest) or an installed
    version; refuses targets below the component's floor. A failed rollback switches back again."""
    layout = Layout(root.resolve())
    lock = applied_lock(layout, None)
    if lock is None or component not in lock.components:
        raise ObsplanError(
            f"no applied lock knows {component!r} under {layout.root}",
            hint="rollback works on components installed by 'obsplan apply'",
        )
    services = make_service_manager(service_manager, layout)
    own = client is None
    client = client or httpx.Client(timeout=10.0, trust_env=False)
    try:
        with apply_lock(layout, "rollback"):
            db = StateDB(layout.db_path)  # first: a broken database stops here, before anything is opened
            audit = AuditLog(layout.audit_path)
            run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
            try:
                db.start_run(run_id, f"rollback {component} {to or ''}".strip(), lock.content_sha256, mode)
                opts = with_host_policy(ApplyOptions(root=layout.root, mode=mode, health_timeout=health_timeout), lock)
                ctx = make_context(layout, opts, Fanout(reporter, audit), db, client, services, run_id)
                result = rollback_in_context(ctx, lock, component, to)
                db.finish_run(run_id, result.status)
                write_metrics(db, layout.metrics_path)
                return result
            finally:
                db.close()
                audit.close()
    finally:
        if own:
            client.close()


def rollback_in_context(ctx: Context, lock: Lock, component: str, to: str | None) -> StepResult:
    assert ctx.db is not None
    db, layout = ctx.db, ctx.layout
    current = layout.current_version(component)
    row = db.installed(component)
    floor = row["floor"] if row else None
    point = None
    if to is None or to.isdigit() or to == adopt.ADOPTED:
        points = db.points(component, ("available",))
        if to == adopt.ADOPTED:
            points = [p for p in points if p.label == adopt.ADOPTED]
        point = db.point(int(to)) if to and to.isdigit() else (points[0] if points else None)
        if point is None or point.component != component:
            raise ObsplanError(
                f"no rollback point {to or ''} for {component}".replace("  ", " "),
                hint=f"see 'obsplan rollback {component} --list'",
            )
        if point.from_version is None:
            raise ObsplanError(f"rollback point {point.id} is the first install of {component}: nothing before it")
        target = point.from_version
    else:
        target = to.lstrip("v")
        points = [p for p in db.points(component, ("available",)) if p.from_version == target]
        point = points[0] if points else None
    if target == current:
        raise ObsplanError(f"{component} already runs {target}", exit_code=EXIT_USAGE)
    if version_below(target, floor):
        raise ObsplanError(
            f"refusing to roll {component} back to {target}: below its rollback floor {floor} "
            "(its data was written by a newer version that older ones cannot read)",
            hint=f"choose a version >= {floor} from 'obsplan rollback {component} --list'",
        )
    if not layout.version_dir(component, target).is_dir():
        raise ObsplanError(
            f"{component} {target} is not installed under {layout.component_dir(component)}",
            hint=f"see 'obsplan rollback {component} --list'",
        )
    comp = lock.components[component]
    fake = Step(
        id=f"rollback:{component}:{current}->{target}",
        component=component,
        from_version=current,
        to_version=target,
        phase="rollback",
        requires=[],
        risk="high",
        reasons=[],
        artifacts={},
    )
    runner = StepRunner(ctx, fake, comp, [fake])
    started, t0 = now_iso(), time.monotonic()
    ctx.emit(component, "rollback_started", from_version=current, to_version=target, point=point.id if point else None)
    db.journal(ctx.run_id, fake.id, component, "step", "start", target)
    try:
        if point is not None:
            restore_point(ctx, runner, point)
        else:
            old = ctx.services.status(component)
            runner.switch_to(target, runner.rendered(target))
            ctx.services.restart(component)
            runner.verify(target, old.pid if old.running else None)
    except Exception as exc:  # noqa: BLE001 - any failure after the switch must switch back
        error = str(exc)
        ctx.emit(component, "rollback_failed", error=error, switching_back_to=current)
        try:
            if current is not None:
                old = ctx.services.status(component)
                runner.switch_to(current, runner.rendered(current))
                ctx.services.restart(component)
                runner.verify(current, old.pid if old.running else None)
        except Exception as exc2:  # noqa: BLE001
            error += f"; switching back to {current} failed too: {exc2}"
        db.add_history(
            run_id=ctx.run_id,
            component=component,
            step_id=fake.id,
            kind="rollback",
            from_version=current,
            to_version=target,
            success=False,
            started_at=started,
            error=error,
            duration=time.monotonic() - t0,
        )
        db.journal(ctx.run_id, fake.id, component, "step", "failed", error[:2000])
        return StepResult(fake.id, component, "failed", getattr(exc, "reason", "rollback_failed"), {"error": error})
    with db.transaction():
        db.add_history(
            run_id=ctx.run_id,
            component=component,
            step_id=fake.id,
            kind="rollback",
            from_version=current,
            to_version=target,
            success=True,
            started_at=started,
            duration=time.monotonic() - t0,
        )
        if point is not None:
            db.set_point_status(point.id, "used")
        db.set_installed(component, target, previous=current, floor=floor, last_result="rolled_back", last_step=fake.id)
        db.journal(ctx.run_id, fake.id, component, "step", "done", target)
    ctx.emit(component, "rollback_done", from_version=current, to_version=target)
    return StepResult(fake.id, component, "ok", "rolled_back", {"from": current, "to": target})
