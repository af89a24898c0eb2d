"""Soak between stages: a step whose lock entry carries `soak_seconds` runs only once its from_version has
served (been verified by obsplan on this host) for that long. Checked before any step runs; a held step is
refused with the time remaining (reason `soaking`, exit 1) and the steps that require it are skipped, while
the other steps of the run go ahead. The clock starts at the newest successful history entry that brought the
host to from_version (an upgrade or a rollback); a host that only reaches from_version in this run waits the
whole soak after it. `--force` skips the check.
"""

from __future__ import annotations

from datetime import UTC, datetime

from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_runner import StepRunner
from obsplan.executor.state.state_db import StateDB

from obsplan.lock.lockfile import Step


def human(seconds: float) -> str:
    """'6d 23h 59m' style (three largest units), for messages."""
    s = max(0, int(seconds + 0.999))
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
    return " ".join([f"{n}{u}" for n, u in parts if n][:3] or ["0s"])


def verified_at(db: StateDB | None, component: str, version: str) -> datetime | None:
    if db is None:
        return None
    rows = db.query(
        "SELECT finished_at FROM upgrade_history WHERE component = ? AND to_version = ? AND success = 1 "
        "AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1",
        (component, version),
    )
    return datetime.fromisoformat(rows[0]["finished_at"]) if rows else None


def hold_unsoaked(steps: list[Step], runners: dict[str, StepRunner], ctx: Context) -> None:
    now = datetime.now(UTC)
    for s in steps:
        runner = runners[s.id]
        if not s.soak_seconds or s.from_version is None or ctx.force or runner.result is not None:
            continue
        host, _how = runner.facts.host_version()
        path = [runner.chain[0].from_version] + [c.to_version for c in runner.chain]
        if host in path and path.index(host) > path.index(s.from_version):
            continue  # the host is past this step already
        since = verified_at(ctx.db, s.component, s.from_version) if host == s.from_version else None
        served = (now - since).total_seconds() if since else 0.0
        remaining = s.soak_seconds - served
        if remaining <= 0:
            continue
        when = f"has served since {since.isoformat(timespec='seconds')}" if since else "is not serving yet"
        runner.fail(
            "soaking",
            f"{s.component} {s.from_version} {when}; the policy's soak of {human(s.soak_seconds)} "
            f"before {s.id} leaves {human(remaining)} to wait (or --force)",
            remaining_seconds=round(remaining, 1),
            soak_seconds=s.soak_seconds,
            since=since.isoformat() if since else None,
        )
