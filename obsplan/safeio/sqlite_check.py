"""Can one of obsplan's own SQLite databases (`state.db`, the rollout journal `rollouts.db`) be trusted? Checked
every time it is opened, before anything reads or writes it.

Unreadable, not SQLite (garbage), truncated or corrupt (`PRAGMA quick_check`), another program's tables
(foreign schema) or a newer schema version (`PRAGMA user_version` above the one this obsplan knows): the
command stops with exit 1 naming what is wrong and the recovery command (`obsplan doctor --repair`, which
moves the database aside, keeps it, and rebuilds the installed versions from the host).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError

SQLITE_MAGIC = b"SQLite format 3\x00"
NEWER = "newer than this obsplan knows"


def refuse(error: type[ObsplanError], what: str, db_path: Path, problem: str, repair: str) -> ObsplanError:
    """The refusal of a database that cannot be trusted (exit 1): what is wrong, and `repair` (an `obsplan doctor`
    command and what it does), or the newer obsplan first when a newer one wrote it."""
    hint = f"use the newer obsplan that wrote it, or {repair}" if NEWER in problem else repair
    return error(f"{what} {db_path} {problem}", hint=hint, exit_code=EXIT_FAILED)


def expected_columns(schema: str, added: list[tuple[str, str, str]]) -> dict[str, set[str]]:
    """table → columns every database of this schema has (columns added by migrations excluded)."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(schema)
        tables = [r[0] for r in mem.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        cols = {t: {r[1] for r in mem.execute(f"PRAGMA table_info({t})")} for t in tables if t != "sqlite_sequence"}
    finally:
        mem.close()
    for table, column, _ in added:
        cols.get(table, set()).discard(column)
    return cols


def problem(db_path: Path, schema: str, added: list[tuple[str, str, str]], version: int) -> str | None:
    """What is wrong with the database at `db_path` (None: fine, or absent, or empty)."""
    if not db_path.exists() and not db_path.is_symlink():
        return None
    if not db_path.is_file():
        return "is not a regular file"
    try:
        with open(db_path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return None  # created, never written: a fresh database
    if not head.startswith(SQLITE_MAGIC):
        return "is not an SQLite database (garbage or another file was written over it)"
    # immutable: creates no -wal/-shm (a dry run leaves the tree as it was) but takes no lock either, so while
    # a writer may be busy (a -wal exists) what looks wrong is read again with locking, through the WAL
    found = _open_and_check(f"file:{db_path}?mode=ro&immutable=1", schema, added, version)
    if found and db_path.with_name(db_path.name + "-wal").exists():
        return _open_and_check(f"file:{db_path}?mode=ro", schema, added, version)
    return found


def _open_and_check(uri: str, schema: str, added: list[tuple[str, str, str]], version: int) -> str | None:
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            return _content_problem(conn, schema, added, version)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"is unreadable or corrupt ({exc})"


def _content_problem(
    conn: sqlite3.Connection, schema: str, added: list[tuple[str, str, str]], version: int
) -> str | None:
    check = [r[0] for r in conn.execute("PRAGMA quick_check")]
    if check != ["ok"]:
        return f"is corrupt or truncated (quick_check: {'; '.join(check)[:300]})"
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > version:
        return f"has schema version {found}, {NEWER} ({version})"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - {"sqlite_sequence"}
    want = expected_columns(schema, added)
    ours = tables & set(want)
    if tables and not ours:
        return f"belongs to another program (tables {', '.join(sorted(tables))[:200]}; none of obsplan's)"
    for table in sorted(ours):
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if not want[table] <= have:
            missing = ", ".join(sorted(want[table] - have))
            return f"has a foreign schema: table {table} lacks columns {missing}"
    return None


def move_aside(db_path: Path) -> str:
    """Rename the database (and its -wal/-shm) to `state.db.broken-<time>`; nothing is deleted."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = db_path.with_name(f"{db_path.name}.broken-{stamp}-{os.getpid()}")
    for suffix in ("-wal", "-shm", ""):
        src = db_path.with_name(db_path.name + suffix)
        if src.exists() or src.is_symlink():
            os.rename(src, aside.with_name(aside.name + suffix))
    return str(aside)
