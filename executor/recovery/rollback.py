"""`obsplan rollback`: back to a rollback point or an installed version, never below the floor, verified serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import obsplan.executor.host.adopt_install as adopt
from obsplan.executor.apply.apply_options import ApplyOptions, make_context, with_host_policy
from obsplan.executor.apply.hostrun import host_run, http_client, new_run_id
from obsplan.executor.checks.config_verdict import check_release
from obsplan.executor.host.host_settings import with_host_settings
from obsplan.executor.host.layout import APPLIED_LOCK, Layout
from obsplan.executor.host.stepfacts import StepFacts, step_outside_plan
from obsplan.executor.queries import applied_lock
from obsplan.executor.recovery.restore import restore_point
from obsplan.executor.reporters import Reporter
from obsplan.executor.services.managers import make_service_manager
from obsplan.executor.services.switch_version import activate
from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_results import StepResult
from obsplan.executor.state.state_db import RollbackPoint, StateDB

from obsplan.kernel.errors import EXIT_FAILED, EXIT_USAGE, ObsplanError
from obsplan.kernel.versions import version_or_none
from obsplan.lock.lockfile import Lock


def version_below(version: str, floor: str | None) -> bool:
    v, f = version_or_none(version), version_or_none(floor)
    return v is not None and f is not None and v < f


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
    force: bool = False,
) -> StepResult:
    """Switch `component` back to a rollback point (`to` = point id or None for the newest) or an installed
    version; refuses targets below the component's floor, and (unless `force`) a version whose own checker
    refuses the configuration the service runs with. A failed rollback switches back again."""
    layout = Layout(root.resolve())
    lock = applied_lock(layout, None)
    if lock is not None:
        lock.require("rollback", str(layout.state_dir / APPLIED_LOCK))
    if lock is None or component not in lock.components:
        raise ObsplanError(
            f"no applied lock knows {component!r} under {layout.root}",
            hint="rollback works on components installed by 'obsplan apply'",
        )
    services = make_service_manager(service_manager, layout)
    with http_client(client) as client, host_run(layout, "rollback", reporter, new_run_id()) as run:
        run.start(f"rollback {component} {to or ''}".strip(), lock.content_sha256, mode)
        opts = ApplyOptions(root=layout.root, mode=mode, health_timeout=health_timeout, force=force)
        opts = with_host_policy(opts, lock)
        ctx = make_context(layout, opts, run.reporter, run.db, client, services, run.run_id)
        result = rollback_in_context(ctx, lock, component, to)
        run.finish(result.status)
        return result


def rollback_in_context(ctx: Context, lock: Lock, component: str, to: str | None) -> StepResult:
    assert ctx.db is not None
    db = ctx.db
    current = ctx.layout.current_version(component)
    row = db.installed(component)
    floor = row["floor"] if row else None
    point, target = _choose(db, component, to)
    _refuse(ctx, component, target, current, floor)
    step = step_outside_plan(
        f"rollback:{component}:{current}->{target}", component, (current, target), "rollback", "high"
    )
    facts = StepFacts(ctx, step, lock.components[component].runtime)
    facts = facts.with_runtime(with_host_settings(facts))  # e.g. credentials the lock left to the host
    _check_config(facts, target, point)
    history = ctx.history(component, step.id)
    ctx.emit(component, "rollback_started", from_version=current, to_version=target, point=point.id if point else None)
    db.journal(ctx.run_id, step.id, component, "step", "start", target)
    try:
        if point is not None:
            restore_point(facts, point)
        else:
            activate(facts, target)
    except Exception as exc:  # noqa: BLE001 - any failure after the switch must switch back
        error = _switch_back(facts, current, str(exc))
        history.record("rollback", current, target, success=False, error=error)
        db.journal(ctx.run_id, step.id, component, "step", "failed", error[:2000])
        return StepResult(step.id, component, "failed", getattr(exc, "reason", "rollback_failed"), {"error": error})
    with db.transaction():
        history.record("rollback", current, target, success=True)
        if point is not None:
            db.set_point_status(point.id, "used")
        db.set_installed(component, target, previous=current, floor=floor, last_result="rolled_back", last_step=step.id)
        db.journal(ctx.run_id, step.id, component, "step", "done", target)
    ctx.emit(component, "rollback_done", from_version=current, to_version=target)
    return StepResult(step.id, component, "ok", "rolled_back", {"from": current, "to": target})


def _choose(db: StateDB, component: str, to: str | None) -> tuple[RollbackPoint | None, str]:
    """(the rollback point to restore, if any; the version to roll back to) for `to`: a point id, `adopted`,
    None (the newest point) or a version."""
    if to is not None and not to.isdigit() and to != adopt.ADOPTED:
        target = to.lstrip("v")
        points = [p for p in db.points(component, ("available",)) if p.from_version == target]
        return (points[0] if points else None), target
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
    return point, point.from_version


def _refuse(ctx: Context, component: str, target: str, current: str | None, floor: str | None) -> None:
    """Refuse the current version, a version below the floor and one that is not installed."""
    if target == current:
        raise ObsplanError(f"{component} already runs {target}", exit_code=EXIT_USAGE)
    if version_below(target, floor):
        raise ObsplanError(
            f"refusing to roll {component} back to {target}: below its rollback floor {floor} "
            "(its data was written by a newer version that older ones cannot read)",
            hint=f"choose a version >= {floor} from 'obsplan rollback {component} --list'",
        )
    if not ctx.layout.version_dir(component, target).is_dir():
        raise ObsplanError(
            f"{component} {target} is not installed under {ctx.layout.component_dir(component)}",
            hint=f"see 'obsplan rollback {component} --list'",
        )


def _check_config(facts: StepFacts, target: str, point: RollbackPoint | None) -> None:
    """The version rolled back to judges the configuration it will run with first (a 3.x-only field refused by
    2.x): the live file, or the copy a restored rollback point puts back. --force skips the refusal, not the
    check. An automatic rollback never comes here: it does not wait for it."""
    ctx, c = facts.ctx, facts.c
    release = ctx.layout.version_dir(c, target)
    verdict = check_release(c, facts.runtime, target, release, ctx.layout, _saved_config(facts, point))
    if verdict is None:
        return
    ctx.emit(c, "config_checked", **verdict.to_dict())
    if not verdict.refused:
        return
    if ctx.force:
        ctx.emit(c, "config_refusal_forced", tool=verdict.tool, version=target, config=verdict.config)
        return
    raise ObsplanError(
        f"refusing to roll {c} back to {target}: {verdict.tool} {target} refuses the configuration: "
        f"{verdict.complaint()}. Nothing was switched",
        file=verdict.config,
        hint=f"make the configuration valid for {target}, or pass --force to roll back anyway",
        exit_code=EXIT_FAILED,
    )


def _saved_config(facts: StepFacts, point: RollbackPoint | None) -> Path | None:
    """The rollback point's copy of the configuration file (what `restore_point` writes back), if it saved one."""
    if point is None or facts.runtime.config_file is None or not point.backup_dir:
        return None
    rel = str(facts.ctx.layout.host(facts.runtime.config_file).relative_to(facts.ctx.layout.root))
    saved = Path(point.backup_dir) / rel.replace("/", "__")
    return saved if rel in point.files and saved.is_file() else None


def _switch_back(facts: StepFacts, current: str | None, error: str) -> str:
    """After a failed rollback, back to the version that ran before it; returns the error, with this one's."""
    facts.ctx.emit(facts.c, "rollback_failed", error=error, switching_back_to=current)
    try:
        if current is not None:
            activate(facts, current)
    except Exception as exc:  # noqa: BLE001
        error += f"; switching back to {current} failed too: {exc}"
    return error
