"""`obsplan rollback --last-run` (seed 003's whole-run `--rollback`): put back every component the last apply
run changed, newest change first, each through a rollback point and proven serving its old version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from obsplan.errors import ObsplanError

from .layout import Layout
from .report import Reporter
from .results import StepResult
from .state import StateDB


def last_run_changes(db: StateDB) -> tuple[str | None, list[tuple[str, str | None, str]]]:
    """(run id of the last apply, [(component, version before the run, version after)]), newest change first."""
    runs = db.query("SELECT run_id FROM runs WHERE command = 'apply' ORDER BY started_at DESC, rowid DESC LIMIT 1")
    if not runs:
        return None, []
    run_id = runs[0]["run_id"]
    rows = db.query(
        "SELECT id, component, from_version, to_version FROM upgrade_history WHERE run_id = ? AND "
        "kind = 'upgrade' AND success = 1 ORDER BY id",
        (run_id,),
    )
    first: dict[str, str | None] = {}
    last: dict[str, tuple[int, str]] = {}
    for r in rows:
        first.setdefault(r["component"], r["from_version"])
        last[r["component"]] = (r["id"], r["to_version"])
    order = sorted(last, key=lambda c: last[c][0], reverse=True)
    return run_id, [(c, first[c], last[c][1]) for c in order]


def rollback_last_run(root: Path, reporter: Reporter, **kwargs: Any) -> tuple[str | None, list[StepResult]]:
    from . import rollback as rollbacks

    layout = Layout(root.resolve())
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        raise ObsplanError(f"nothing was applied under {layout.root}", key="--last-run")
    with db:
        run_id, changes = last_run_changes(db)
    results = []
    for c, before, after in changes:
        current = layout.current_version(c)
        sid = f"rollback:{c}:{current}->{before}"
        if before is None:  # installed fresh by that run: there is no earlier version to serve
            results.append(StepResult(sid, c, "skipped", "first_install", {"installed": after}))
        elif current == before:
            results.append(StepResult(sid, c, "up_to_date", "already_back", {"version": before}))
        else:
            results.append(rollbacks.rollback(root, c, before, reporter, **kwargs))
    return run_id, results
