"""Rows of `upgrade_history` written straight into a state database, for tests that read history back
(metrics, seed 000's queries): one tuple a row instead of eleven keyword arguments."""

from __future__ import annotations

from typing import Any

from obsplan.executor.state.state_db import StateDB

# (component, step_id, kind, from_version, to_version, success, started_at)
Row = tuple[str, str, str, str | None, str, bool, str]


def add_rows(db: StateDB, run_id: str, rows: list[Row], **extra: dict[str, Any]) -> None:
    """Write `rows` for run `run_id`; `extra` maps a row's index (as a string) to further columns of it."""
    for i, (component, step_id, kind, frm, to, success, started_at) in enumerate(rows):
        db.add_history(
            run_id=run_id,
            component=component,
            step_id=step_id,
            kind=kind,
            from_version=frm,
            to_version=to,
            success=success,
            started_at=started_at,
            **extra.get(f"row{i}", {}),
        )
