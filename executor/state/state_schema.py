"""The state database's schema: tables, the columns added since the first release, and its version.

`StateDB` (executor/state/state_db.py) creates and upgrades a database from these; `statecheck` and `doctor`
compare a database against them.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS installed_components (
    component        TEXT PRIMARY KEY,
    version          TEXT,
    previous_version TEXT,
    floor            TEXT,
    source           TEXT NOT NULL DEFAULT 'obsplan',
    last_result      TEXT,
    last_step        TEXT,
    updated_at       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS upgrade_history (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT,
    component        TEXT NOT NULL,
    step_id          TEXT,
    kind             TEXT NOT NULL DEFAULT 'upgrade',
    from_version     TEXT,
    to_version       TEXT,
    success          INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    duration_seconds REAL,
    error            TEXT,
    unverified       TEXT
);
CREATE INDEX IF NOT EXISTS upgrade_history_component ON upgrade_history (component, started_at);
CREATE TABLE IF NOT EXISTS rollback_points (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    component    TEXT NOT NULL,
    step_id      TEXT,
    from_version TEXT,
    to_version   TEXT NOT NULL,
    version_dir  TEXT,
    backup_dir   TEXT NOT NULL,
    files        TEXT NOT NULL DEFAULT '',
    data_dir     TEXT,
    floor        TEXT,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_cache (
    path      TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    inode     INTEGER NOT NULL,
    version   TEXT,
    raw       TEXT,
    probed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    pid         INTEGER NOT NULL,
    command     TEXT NOT NULL,
    lock_sha256 TEXT,
    mode        TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    result      TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL,
    step_id   TEXT,
    component TEXT,
    stage     TEXT NOT NULL,
    status    TEXT NOT NULL,
    detail    TEXT,
    at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_step ON journal (step_id, id);
CREATE TABLE IF NOT EXISTS approvals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    step_id     TEXT NOT NULL,
    step_sha256 TEXT NOT NULL,
    lock_sha256 TEXT,
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_step ON approvals (step_id, step_sha256);
"""

# columns added after the first release: (table, column, declaration), added to older databases on open.
# `upgraded_at` (virtual: when the step finished, else started) makes seed 000's "Recent upgrades" query work
# verbatim: SELECT component, from_version, to_version, success FROM upgrade_history ORDER BY upgraded_at DESC
MIGRATIONS = [
    ("upgrade_history", "unverified", "TEXT"),
    ("upgrade_history", "upgraded_at", "TEXT GENERATED ALWAYS AS (COALESCE(finished_at, started_at)) VIRTUAL"),
    ("rollback_points", "label", "TEXT"),  # `adopted`: the install obsplan found and took over
]

# `PRAGMA user_version` of a database this obsplan wrote; bump it with every migration. A database with a
# higher number was written by a newer obsplan and is refused (see statecheck); 0 is a database from before
# versioning, upgraded on open.
SCHEMA_VERSION = 1
