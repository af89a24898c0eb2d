"""The executor's state: SQLite at `<root>/var/lib/obsplan/state.db` (WAL, synchronous=FULL, mode 0600).

Every write is its own committed transaction, so a SIGKILL at any instant leaves the last journalled
point on disk (doit's own dependency file, by contrast, is written once at exit and is kept out of the way).
Tables `installed_components`, `upgrade_history`, `rollback_points`, `version_cache`, `journal` and
`approvals` (steps approved on this host with `obsplan approve`, for `apply --auto`) are plain enough for `sqlite3 state.db 'SELECT component, version FROM installed_components;'`.
Parameterised queries only. The database carries its schema version (`PRAGMA user_version`, `SCHEMA_VERSION`)
and is checked on every open (`statecheck`): a corrupt, foreign or newer database stops the command (exit 1).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obsplan.executor.reporters import now_iso
from obsplan.executor.state.state_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.ownfiles import check_sqlite, create_sqlite, same_file
from obsplan.safeio.sqlite_check import problem, refuse
from obsplan.safeio.sqlite_tx import immediate

# stage "step" carries the step's lifecycle: start → done | up_to_date | failed | rolled_back | interrupted
TERMINAL = ("done", "up_to_date", "failed", "rolled_back", "interrupted", "rollback_failed")


class StateError(ObsplanError):
    reason = "state_db"


def _repair(db_path: Path) -> str:
    root = db_path.parents[3]  # <root>/var/lib/obsplan/state.db
    return (
        f"run 'obsplan doctor --root {root} --repair': it moves the database aside (kept, never deleted) and "
        "rebuilds the installed versions from the host"
    )


@dataclass(frozen=True)
class RollbackPoint:
    id: int
    component: str
    step_id: str | None
    from_version: str | None
    to_version: str
    version_dir: str | None
    backup_dir: str
    files: list[str]
    data_dir: str | None
    floor: str | None
    status: str
    created_at: str
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StateDB:
    """One connection shared by doit's worker threads, serialised by a lock; autocommit per statement."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        check_sqlite(path, "state database")  # obsplan's own file: never through a link (exit 2 naming it)
        wrong = problem(path, SCHEMA, MIGRATIONS, SCHEMA_VERSION)
        if wrong is not None:
            raise refuse(StateError, "state database", path, wrong, _repair(path))
        if read_only:
            # immutable=1: never creates -wal/-shm files, so a dry run leaves the tree byte-identical
            self.conn = sqlite3.connect(
                f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            ident = create_sqlite(path, "state database")
            self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            try:
                same_file(path, ident, "state database")
            except ObsplanError:
                self.conn.close()
                raise
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
            for table, column, decl in MIGRATIONS:
                have = {r[1] for r in self.conn.execute(f"PRAGMA table_xinfo({table})")}
                if column not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.conn.row_factory = sqlite3.Row

    @classmethod
    def open_for_reading(cls, path: Path) -> StateDB | None:
        return cls(path, read_only=True) if path.exists() or path.is_symlink() else None

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- low level -------------------------------------------------------------------------------------
    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            if self.read_only:
                raise RuntimeError("state database opened read-only (dry run)")
            return self.conn.execute(sql, params)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, immediate(self.conn):
            yield

    # -- runs and journal -------------------------------------------------------------------------------
    def start_run(self, run_id: str, command: str, lock_sha256: str | None, mode: str | None) -> None:
        self._exec(
            "INSERT INTO runs (run_id, pid, command, lock_sha256, mode, started_at) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, os.getpid(), command, lock_sha256, mode, now_iso()),
        )

    def finish_run(self, run_id: str, result: str) -> None:
        self._exec("UPDATE runs SET finished_at = ?, result = ? WHERE run_id = ?", (now_iso(), result, run_id))

    def journal(
        self, run_id: str, step_id: str | None, component: str | None, stage: str, status: str, detail: str = ""
    ) -> None:
        self._exec(
            "INSERT INTO journal (run_id, step_id, component, stage, status, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, step_id, component, stage, status, detail, now_iso()),
        )

    def step_lifecycle(self, step_id: str) -> sqlite3.Row | None:
        """The last lifecycle record of a step (stage 'step'), from any run."""
        rows = self.query(
            "SELECT * FROM journal WHERE step_id = ? AND stage = 'step' ORDER BY id DESC LIMIT 1", (step_id,)
        )
        return rows[0] if rows else None

    def step_unfinished(self, step_id: str) -> bool:
        row = self.step_lifecycle(step_id)
        return row is not None and row["status"] not in TERMINAL

    def last_stage(self, step_id: str) -> str | None:
        rows = self.query(
            "SELECT stage, status FROM journal WHERE step_id = ? AND stage != 'step' ORDER BY id DESC LIMIT 1",
            (step_id,),
        )
        return f"{rows[0]['stage']}:{rows[0]['status']}" if rows else None

    def interrupted_steps(self, run_id: str) -> list[sqlite3.Row]:
        """Steps whose last lifecycle record is 'start' from another run: that run died mid-step."""
        rows = self.query(
            "SELECT j.* FROM journal j JOIN (SELECT step_id, MAX(id) AS id FROM journal "
            "WHERE stage = 'step' GROUP BY step_id) last ON j.id = last.id "
            "WHERE j.status = 'start' AND j.run_id != ?",
            (run_id,),
        )
        return rows

    # -- installed components ----------------------------------------------------------------------------
    def installed(self, component: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM installed_components WHERE component = ?", (component,))
        return rows[0] if rows else None

    def all_installed(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM installed_components ORDER BY component")

    def set_installed(
        self,
        component: str,
        version: str | None,
        *,
        previous: str | None = None,
        floor: str | None = None,
        source: str = "obsplan",
        last_result: str | None = None,
        last_step: str | None = None,
    ) -> None:
        self._exec(
            "INSERT INTO installed_components (component, version, previous_version, floor, source, last_result, "
            "last_step, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(component) DO UPDATE SET "
            "version = excluded.version, previous_version = excluded.previous_version, floor = excluded.floor, "
            "source = excluded.source, last_result = excluded.last_result, last_step = excluded.last_step, "
            "updated_at = excluded.updated_at",
            (component, version, previous, floor, source, last_result, last_step, now_iso()),
        )

    def set_last_result(self, component: str, result: str, step_id: str | None) -> None:
        row = self.installed(component)
        if row is None:
            self.set_installed(component, None, last_result=result, last_step=step_id, source="none")
        else:
            self._exec(
                "UPDATE installed_components SET last_result = ?, last_step = ?, updated_at = ? WHERE component = ?",
                (result, step_id, now_iso(), component),
            )

    # -- history -------------------------------------------------------------------------------------------
    def add_history(
        self,
        *,
        run_id: str,
        component: str,
        step_id: str | None,
        kind: str,
        from_version: str | None,
        to_version: str | None,
        success: bool,
        started_at: str,
        error: str | None = None,
        duration: float | None = None,
        unverified: str | None = None,
    ) -> None:
        """`unverified`: what was installed without sha256 verification (`--allow-unverified`), else None."""
        self._exec(
            "INSERT INTO upgrade_history (run_id, component, step_id, kind, from_version, to_version, success, "
            "started_at, finished_at, duration_seconds, error, unverified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                component,
                step_id,
                kind,
                from_version,
                to_version,
                int(success),
                started_at,
                now_iso(),
                duration,
                error,
                unverified,
            ),
        )

    def history(self, component: str | None = None, limit: int = 50) -> list[sqlite3.Row]:
        if component:
            return self.query(
                "SELECT * FROM upgrade_history WHERE component = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                (component, limit),
            )
        return self.query("SELECT * FROM upgrade_history ORDER BY started_at DESC, id DESC LIMIT ?", (limit,))

    # -- approvals ---------------------------------------------------------------------------------------------
    def approve(self, step_id: str, step_sha256: str, lock_sha256: str | None, approved_by: str) -> None:
        self._exec(
            "INSERT INTO approvals (step_id, step_sha256, lock_sha256, approved_by, approved_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (step_id, step_sha256, lock_sha256, approved_by, now_iso()),
        )

    def approval(self, step_id: str, step_sha256: str) -> sqlite3.Row | None:
        """The first approval of exactly this step content (id and digest), or None."""
        if self.read_only and not self.has_table("approvals"):  # a database written before approvals existed
            return None
        rows = self.query(
            "SELECT * FROM approvals WHERE step_id = ? AND step_sha256 = ? ORDER BY id LIMIT 1", (step_id, step_sha256)
        )
        return rows[0] if rows else None

    def has_table(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    # -- rollback points ------------------------------------------------------------------------------------
    def add_point(
        self,
        *,
        component: str,
        step_id: str | None,
        from_version: str | None,
        to_version: str,
        version_dir: str | None,
        backup_dir: str,
        files: list[str],
        data_dir: str | None,
        floor: str | None,
        status: str,
        label: str | None = None,
    ) -> int:
        cur = self._exec(
            "INSERT INTO rollback_points (component, step_id, from_version, to_version, version_dir, backup_dir, "
            "files, data_dir, floor, status, created_at, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                component,
                step_id,
                from_version,
                to_version,
                version_dir,
                backup_dir,
                "\n".join(files),
                data_dir,
                floor,
                status,
                now_iso(),
                label,
            ),
        )
        return int(cur.lastrowid or 0)

    def set_point_status(self, point_id: int, status: str) -> None:
        self._exec("UPDATE rollback_points SET status = ? WHERE id = ?", (status, point_id))

    def points(self, component: str, statuses: tuple[str, ...] = ("available",)) -> list[RollbackPoint]:
        marks = ",".join("?" for _ in statuses)
        rows = self.query(
            f"SELECT * FROM rollback_points WHERE component = ? AND status IN ({marks}) ORDER BY id DESC",
            (component, *statuses),
        )
        return [_point(r) for r in rows]

    def point(self, point_id: int) -> RollbackPoint | None:
        rows = self.query("SELECT * FROM rollback_points WHERE id = ?", (point_id,))
        return _point(rows[0]) if rows else None

    def pending_point(self, step_id: str) -> RollbackPoint | None:
        rows = self.query(
            "SELECT * FROM rollback_points WHERE step_id = ? AND status = 'pending' ORDER BY id DESC LIMIT 1",
            (step_id,),
        )
        return _point(rows[0]) if rows else None

    # -- version cache -----------------------------------------------------------------------------------------
    def cached_version(self, path: str, st: os.stat_result) -> tuple[bool, str | None]:
        rows = self.query("SELECT * FROM version_cache WHERE path = ?", (path,))
        if rows and (rows[0]["size"], rows[0]["mtime_ns"], rows[0]["inode"]) == (st.st_size, st.st_mtime_ns, st.st_ino):
            return True, rows[0]["version"]
        return False, None

    def cache_version(self, path: str, st: os.stat_result, version: str | None, raw: str) -> None:
        if self.read_only:
            return
        self._exec(
            "INSERT OR REPLACE INTO version_cache (path, size, mtime_ns, inode, version, raw, probed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, st.st_size, st.st_mtime_ns, st.st_ino, version, raw[:2000], now_iso()),
        )

    # -- metrics --------------------------------------------------------------------------------------------
    def attempt_counts(self) -> list[sqlite3.Row]:
        return self.query(
            "SELECT component, kind, success, COUNT(*) AS n, MAX(finished_at) AS last, "
            "SUM(duration_seconds) AS total_seconds FROM upgrade_history GROUP BY component, kind, success"
        )


def _point(r: sqlite3.Row) -> RollbackPoint:
    return RollbackPoint(
        id=r["id"],
        component=r["component"],
        step_id=r["step_id"],
        from_version=r["from_version"],
        to_version=r["to_version"],
        version_dir=r["version_dir"],
        backup_dir=r["backup_dir"],
        files=[f for f in r["files"].split("\n") if f],
        data_dir=r["data_dir"],
        floor=r["floor"],
        status=r["status"],
        created_at=r["created_at"],
        label=r["label"] if "label" in r.keys() else None,  # noqa: SIM118 - a sqlite3.Row's `in` tests values
    )
