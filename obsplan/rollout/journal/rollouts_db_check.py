"""Can the rollout journal `rollouts.db` be trusted? The same checks as the executor's `state.db`
(`obsplan.safeio.sqlite_check`), run before the journal is opened, and the same repair through `obsplan doctor`.

Not a regular file (a directory, a FIFO, a device), not SQLite (garbage), corrupt or truncated, another
program's tables (foreign schema) or a newer schema version (`PRAGMA user_version` above `SCHEMA_VERSION`): the
command stops with exit 1 naming what is wrong and the recovery, `obsplan doctor --state-dir DIR --repair`, which
moves the journal aside (kept, never deleted); the next rollout starts a new one. A `--state-dir` that cannot be
a directory is bad input (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.sqlite_check import problem
from obsplan.safeio.sqlite_check import refuse as refuse_db

JOURNAL_FILE = "rollouts.db"
# `PRAGMA user_version` of a journal this obsplan wrote (0: a journal from before versioning, upgraded on open).
SCHEMA_VERSION = 1


class JournalError(ObsplanError):
    reason = "rollout_journal"


def journal_path(state_dir: Path) -> Path:
    return state_dir / JOURNAL_FILE


def ensure_state_dir(state_dir: Path) -> None:
    """Create `--state-dir` (exit 2 when it cannot be a directory)."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ObsplanError(
            f"cannot be used as the journal directory: {exc.strerror or exc}",
            file=str(state_dir),
            key="--state-dir",
            hint="give a directory obsplan may create and write",
        ) from None


def journal_problem(state_dir: Path) -> str | None:
    """What is wrong with the journal in `state_dir` (None: fine, absent or empty)."""
    from obsplan.rollout.journal.rollouts_db import SCHEMA

    return problem(journal_path(state_dir), SCHEMA, [], SCHEMA_VERSION)


def refuse(state_dir: Path, wrong: str) -> ObsplanError:
    repair = (
        f"run 'obsplan doctor --state-dir {state_dir} --repair': it moves the journal aside (kept, never deleted) "
        "and the next rollout starts a new one"
    )
    return refuse_db(JournalError, "rollout journal", journal_path(state_dir), wrong, repair)


def check_journal(state_dir: Path, repair: bool) -> tuple[str | None, str | None]:
    """(what is wrong, where it was moved with `repair`) for `obsplan doctor --state-dir`."""
    wrong = journal_problem(state_dir)
    if wrong is None or not repair:
        return wrong, None
    from obsplan.safeio.sqlite_check import move_aside

    return wrong, move_aside(journal_path(state_dir))
