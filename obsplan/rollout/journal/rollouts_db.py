"""The rollout journal: SQLite in `--state-dir` (default `$XDG_STATE_HOME/obsplan`, else
`~/.local/state/obsplan`), file `rollouts.db`. Every batch, host result and gate measurement is committed as it
happens, so a halted or killed rollout can be resumed (`--resume`) and shown (`--status`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from obsplan.kernel.clock import now_iso
from obsplan.rollout.journal.rollouts_db_check import (
    SCHEMA_VERSION,
    ensure_state_dir,
    journal_path,
    journal_problem,
    refuse,
)
from obsplan.safeio.ownfiles import check_sqlite, create_sqlite, same_file
from obsplan.safeio.sqlite_tx import immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (id TEXT PRIMARY KEY, started_at TEXT, finished_at TEXT, status TEXT,
    lock_path TEXT, lock_sha256 TEXT, inventory TEXT, options TEXT, batches TEXT);
CREATE TABLE IF NOT EXISTS host_results (rollout_id TEXT, batch INTEGER, host TEXT, action TEXT, status TEXT,
    detail TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS gate_measurements (rollout_id TEXT, batch INTEGER, n INTEGER, ok INTEGER,
    detail TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS events (rollout_id TEXT, seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT, at TEXT);
"""


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "obsplan"


class Journal:
    """Checked before it is opened (`journal_check`: a garbage, foreign, newer or non-file journal is refused)."""

    def __init__(self, state_dir: Path) -> None:
        ensure_state_dir(state_dir)
        check_sqlite(journal_path(state_dir), "rollout journal")  # a link is refused before it is read (exit 2)
        wrong = journal_problem(state_dir)
        if wrong is not None:
            raise refuse(state_dir, wrong)
        self.path = journal_path(state_dir)
        ident = create_sqlite(self.path, "rollout journal")  # never through a link (exit 2 naming it)
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        same_file(self.path, ident, "rollout journal")
        self.conn.executescript(SCHEMA)
        self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    def _json(self, text: Any) -> Any:
        """A JSON column as written by this class; anything else means the journal was edited or damaged."""
        try:
            return json.loads(text)
        except (TypeError, ValueError, RecursionError):
            raise refuse(
                self.path.parent, "holds a row that is not the JSON obsplan wrote (edited or damaged)"
            ) from None

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """The statements inside commit together, once (a host's result and its event: one sync, not two)."""
        with immediate(self.conn):
            yield

    def start(
        self, lock_path: str, lock_sha256: str, inventory: str, options: dict[str, Any], batches: list[dict[str, Any]]
    ) -> str:
        rid = f"{now_iso()[:19].replace(':', '').replace('-', '')}-{uuid.uuid4().hex[:6]}"
        self.conn.execute(
            "INSERT INTO rollouts VALUES (?,?,?,?,?,?,?,?,?)",
            (
                rid,
                now_iso(),
                None,
                "running",
                lock_path,
                lock_sha256,
                inventory,
                json.dumps(options, sort_keys=True),
                json.dumps(batches),
            ),
        )
        return rid

    def set_status(self, rid: str, status: str) -> None:
        finished = now_iso() if status in ("done", "halted") else None
        self.conn.execute("UPDATE rollouts SET status=?, finished_at=? WHERE id=?", (status, finished, rid))

    def host_result(self, rid: str, batch: int, host: str, action: str, status: str, detail: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO host_results VALUES (?,?,?,?,?,?,?)",
            (rid, batch, host, action, status, json.dumps(detail, sort_keys=True), now_iso()),
        )

    def measurement(self, rid: str, batch: int, n: int, ok: bool, detail: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO gate_measurements VALUES (?,?,?,?,?,?)",
            (rid, batch, n, int(ok), json.dumps(detail, sort_keys=True), now_iso()),
        )

    def event(self, rid: str, event: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO events (rollout_id, event, at) VALUES (?,?,?)",
            (rid, json.dumps(event, sort_keys=True), now_iso()),
        )

    def rollout(self, rid: str | None = None) -> dict[str, Any] | None:
        """One rollout (default: the newest)."""
        sql = "SELECT id, started_at, finished_at, status, lock_path, lock_sha256, inventory, options, batches FROM rollouts"
        row = self.conn.execute(
            sql + (" WHERE id=?" if rid else " ORDER BY started_at DESC, rowid DESC LIMIT 1"), (rid,) if rid else ()
        ).fetchone()
        if row is None:
            return None
        keys = [
            "id",
            "started_at",
            "finished_at",
            "status",
            "lock_path",
            "lock_sha256",
            "inventory",
            "options",
            "batches",
        ]
        out = dict(zip(keys, row, strict=True))
        out["options"], out["batches"] = self._json(out["options"]), self._json(out["batches"])
        return out

    def host_results(self, rid: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT batch, host, action, status, detail, at FROM host_results WHERE rollout_id=? ORDER BY rowid", (rid,)
        ).fetchall()
        return [
            {"batch": b, "host": h, "action": a, "status": s, "detail": self._json(d), "at": at}
            for b, h, a, s, d, at in rows
        ]

    def measurements(self, rid: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT batch, n, ok, detail, at FROM gate_measurements WHERE rollout_id=? ORDER BY rowid", (rid,)
        ).fetchall()
        return [{"batch": b, "n": n, "ok": bool(ok), "detail": self._json(d), "at": at} for b, n, ok, d, at in rows]

    def events(self, rid: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT event FROM events WHERE rollout_id=? ORDER BY seq", (rid,)).fetchall()
        return [self._json(r[0]) for r in rows]

    def applied_ok(self, rid: str) -> set[str]:
        """Hosts whose last result in this rollout is a successful apply (never applied again on resume)."""
        last: dict[str, tuple[str, str]] = {}
        for r in self.host_results(rid):
            last[r["host"]] = (r["action"], r["status"])
        return {h for h, (action, status) in last.items() if action == "apply" and status == "ok"}

    def passed_gates(self, rid: str) -> set[int]:
        """Indexes of the batches whose gate passed (events written before the index was recorded: none)."""
        return {
            e["index"] for e in self.events(rid) if e.get("event") == "gate_passed" and isinstance(e.get("index"), int)
        }

    def update_options(self, rid: str, options: dict[str, Any]) -> None:
        """The options a resume changed (with --override-gates, which is itself recorded in them)."""
        self.conn.execute("UPDATE rollouts SET options=? WHERE id=?", (json.dumps(options, sort_keys=True), rid))
