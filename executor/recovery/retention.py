"""Retention after a successful step: old versions and rollback points go, within the host policy's limits."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from obsplan.executor.stages.step_context import Context


def _age_days(path: Path, now: float) -> float:
    return (now - path.stat().st_mtime) / 86400 if path.exists() else 0.0


def prune_used_backups(ctx: Context, component: str, now: float) -> list[str]:
    """Backups of rollback points already used (rolled back to): the same rule, newest `keep_versions` kept."""
    assert ctx.db is not None
    removed = []
    for i, p in enumerate(ctx.db.points(component, ("used",))):
        if i >= ctx.keep_versions or _age_days(Path(p.backup_dir), now) > ctx.keep_days:
            shutil.rmtree(p.backup_dir, ignore_errors=True)
            ctx.db.set_point_status(p.id, "expired")
            removed.append(f"used_point:{p.id}")
    return removed


def retention(ctx: Context, component: str) -> list[str]:
    """Keep the newest `keep_versions` versions and rollback points (and none older than `keep_days`),
    never the current version or the newest rollback target; backups of used points follow the same rule."""
    now = time.time()
    removed, protected = _prune_points(ctx, component, now)
    removed += prune_used_backups(ctx, component, now)
    return removed + _prune_versions(ctx, component, protected | {ctx.layout.current_version(component)}, now)


def _prune_points(ctx: Context, component: str, now: float) -> tuple[list[str], set[str | None]]:
    """Expire available rollback points beyond the limits (never the newest); (removed, versions kept for them)."""
    assert ctx.db is not None
    removed, protected = [], set()
    for i, p in enumerate(ctx.db.points(component, ("available",))):
        if i >= ctx.keep_versions or (i > 0 and _age_days(Path(p.backup_dir), now) > ctx.keep_days):
            shutil.rmtree(p.backup_dir, ignore_errors=True)
            ctx.db.set_point_status(p.id, "expired")
            removed.append(f"point:{p.id}")
        else:
            protected.add(p.from_version)
    return removed, protected


def _prune_versions(ctx: Context, component: str, protected: set[str | None], now: float) -> list[str]:
    cdir = ctx.layout.component_dir(component)
    versions = [d for d in cdir.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith(".")]
    versions.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    removed = []
    for i, d in enumerate(versions):
        if d.name in protected:
            continue
        if i >= ctx.keep_versions or _age_days(d, now) > ctx.keep_days:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"version:{d.name}")
    return removed
