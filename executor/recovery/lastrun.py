"""`obsplan rollback --last-run` (seed 003's whole-run `--rollback`): put back every component the last apply
run changed, newest change first, each through a rollback point and proven serving its old version: the
earliest version before one of the run's steps that the component's rollback floor allows."""

from __future__ import annotations

from pathlib import Path

from obsplan.executor.host.layout import Layout
from obsplan.executor.reporters import Reporter
from obsplan.executor.stages.step_results import StepResult
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import ObsplanError


def last_run_changes(db: StateDB) -> tuple[str | None, list[tuple[str, list[str | None], str]]]:
    """(run id of the last apply, [(component, the versions before each of the run's steps, oldest first,
    version after)]), newest change first."""
    runs = db.query("SELECT run_id FROM runs WHERE command = 'apply' ORDER BY started_at DESC, rowid DESC LIMIT 1")
    if not runs:
        return None, []
    run_id = runs[0]["run_id"]
    rows = db.query(
        "SELECT id, component, from_version, to_version FROM upgrade_history WHERE run_id = ? AND "
        "kind = 'upgrade' AND success = 1 ORDER BY id",
        (run_id,),
    )
    befores: dict[str, list[str | None]] = {}
    last: dict[str, tuple[int, str]] = {}
    for r in rows:
        befores.setdefault(r["component"], []).append(r["from_version"])
        last[r["component"]] = (r["id"], r["to_version"])
    order = sorted(last, key=lambda c: last[c][0], reverse=True)
    return run_id, [(c, befores[c], last[c][1]) for c in order]


def allowed_before(befores: list[str | None], floor: str | None) -> str | None:
    """The earliest version before one of the run's steps that the floor allows (a two-stage run 2.48.1 →
    2.55.1 → 3.8.1 with floor 2.55.1 goes back to 2.55.1, the version before its last step); None: none."""
    from obsplan.executor.recovery.rollback import version_below

    for before in befores:
        if before is not None and not version_below(before, floor):
            return before
    return None


def rollback_last_run(
    root: Path,
    reporter: Reporter,
    service_manager: str = "auto",
    mode: str = "standard",
    health_timeout: float | None = None,
) -> tuple[str | None, list[StepResult]]:
    """Every component the last apply run changed, back to its version before that run (each a `rollback`
    with this service manager, mode and health window)."""
    import obsplan.executor.recovery.rollback as rollbacks

    layout = Layout(root.resolve())
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        raise ObsplanError(f"nothing was applied under {layout.root}", key="--last-run")
    with db:
        run_id, changes = last_run_changes(db)
    results = []
    for c, befores, after in changes:
        current = layout.current_version(c)
        before = allowed_before(befores, _floor(layout, c))
        sid = f"rollback:{c}:{current}->{before}"
        if befores[0] is None and len(befores) == 1:  # installed fresh by that run: nothing earlier to serve
            results.append(StepResult(sid, c, "skipped", "first_install", {"installed": after}))
        elif before is None:
            floor = _floor(layout, c)
            error = f"every version before the run's {c} steps is below its rollback floor {floor}; {c} stays"
            detail = {"error": error, "before_run": befores[0], "floor": floor, "version": current}
            results.append(StepResult(sid, c, "failed", "below_floor", detail))  # a refusal: exit 1
        elif current == before:
            results.append(StepResult(sid, c, "up_to_date", "already_back", {"version": before}))
        else:
            results.append(rollbacks.rollback(root, c, before, reporter, service_manager, mode, health_timeout))
    return run_id, results


def _floor(layout: Layout, component: str) -> str | None:
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        return None
    with db:
        row = db.installed(component)
    return row["floor"] if row is not None else None
