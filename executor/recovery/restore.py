"""Restore a rollback point: the unit, config and credential files it saved, the version it was taken from."""

from __future__ import annotations

from pathlib import Path

from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.services.switch_version import activate
from obsplan.executor.state.state_db import RollbackPoint

from obsplan.safeio.fsio import write_atomic


def restore_point(facts: StepFacts, point: RollbackPoint) -> None:
    """Switch a component back to the state a rollback point recorded and prove the old version serves."""
    ctx, c = facts.ctx, facts.c
    if point.from_version is None:  # a fresh install failed: remove it again
        _remove_install(facts)
        ctx.emit(c, "rolled_back", to_version=None, point=point.id)
        return
    backup = Path(point.backup_dir)
    definition = ctx.services.definition_path(c)
    saved_def = backup / _saved_name(str(definition.relative_to(ctx.layout.root)))
    rendered = saved_def.read_text() if saved_def.is_file() else facts.rendered(point.from_version)
    for rel in point.files:
        src = backup / _saved_name(rel)
        dest = ctx.layout.root / rel
        if src.is_file() and dest != definition:
            write_atomic(dest, src.read_text())
    activate(facts, point.from_version, rendered)
    ctx.emit(c, "rolled_back", to_version=point.from_version, point=point.id, backup=point.backup_dir)


def _saved_name(rel: str) -> str:
    """The name a file under the root (`etc/x/y.yml`) has in a rollback point's backup directory."""
    return rel.replace("/", "__")


def _remove_install(facts: StepFacts) -> None:
    ctx, c = facts.ctx, facts.c
    ctx.services.stop(c)
    ctx.services.remove_unit(c)
    for name in facts.runtime.binaries:
        (ctx.layout.bin_dir / name).unlink(missing_ok=True)
    ctx.layout.current_link(c).unlink(missing_ok=True)
