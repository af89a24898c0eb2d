"""The rollout journal `rollouts.db` (issue 18): garbage, a directory, a FIFO, a truncated or foreign database,
a newer schema version or an edited row is refused with exit 1 naming the repair, never read (no wait on a
FIFO, no internal error); `obsplan doctor --state-dir DIR` finds it and `--repair` moves it aside (kept), after
which the journal works again. The sequence an operator lives: refused → doctor → repair → status works."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from obsplan.rollout.journal.rollouts_db import Journal
from tests.reliability.conftest import Record, no_hang
from tests.reliability.hostile import cli


def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(4096))


def _directory(p: Path) -> None:
    p.mkdir()


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _foreign(p: Path) -> None:
    with sqlite3.connect(p) as c:
        c.execute("CREATE TABLE accounts (id INTEGER, owner TEXT)")
        c.execute("INSERT INTO accounts VALUES (1, 'x')")


def _lacking(p: Path) -> None:
    with sqlite3.connect(p) as c:
        c.execute("CREATE TABLE rollouts (id TEXT)")


def _newer(p: Path) -> None:
    Journal(p.parent).close()
    with sqlite3.connect(p) as c:
        c.execute("PRAGMA user_version = 99")


def _truncated(p: Path) -> None:
    j = Journal(p.parent)
    for i in range(200):
        j.start(f"l{i}.lock", "ab" * 32, "inv.yaml", {"i": "x" * 200}, [])
    j.close()
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _edited_row(p: Path) -> None:
    j = Journal(p.parent)
    rid = j.start("l.lock", "ab" * 32, "inv.yaml", {}, [{"index": 0, "name": "canary", "hosts": ["a"]}])
    j.close()
    with sqlite3.connect(p) as c:
        c.execute("UPDATE rollouts SET options = '{not json' WHERE id = ?", (rid,))


BROKEN: dict[str, Callable[[Path], None]] = {
    "garbage": _garbage,
    "directory": _directory,
    "fifo": _fifo,
    "foreign": _foreign,
    "lacking-columns": _lacking,
    "newer-version": _newer,
    "truncated": _truncated,
    "edited-row": _edited_row,
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_journal_refused_then_repaired(tmp_path: Path, kind: str, outcomes: Record) -> None:
    state = tmp_path / "state"
    state.mkdir()
    BROKEN[kind](state / "rollouts.db")
    with no_hang(60):
        status = cli("rollout", "--status", "--state-dir", str(state))
        found = cli("doctor", "--state-dir", str(state), "--json")
        repaired = cli("doctor", "--state-dir", str(state), "--repair")
        after = cli("rollout", "--status", "--state-dir", str(state), "--json")
    for name, out in (("status", status), ("doctor", found), ("repair", repaired), ("after", after)):
        outcomes(f"rollout journal::{name}", out.exit_code, out.exit_code != 3)
    assert status.exit_code == 1, status.output
    assert "rollout journal" in status.output and f"doctor --state-dir {state} --repair" in status.output
    if kind == "edited-row":  # a sound database: doctor checks the file, the row is refused where it is read
        assert found.exit_code == 0, found.output
        return
    assert found.exit_code == 1 and '"healthy": false' in found.output, found.output
    assert repaired.exit_code == 0 and "moved aside" in repaired.output, repaired.output
    assert after.exit_code == 0 and after.output.strip() == "null", after.output
    kept = [p for p in state.iterdir() if p.name.startswith("rollouts.db.broken-")]
    assert kept, list(state.iterdir())


def test_state_dir_that_is_a_file_is_bad_input(tmp_path: Path, outcomes: Record) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = cli("rollout", "--status", "--state-dir", str(blocker / "sub"))
    outcomes("rollout journal::state-dir is a file", out.exit_code, out.exit_code == 2)
    assert out.exit_code == 2 and "--state-dir" in out.output, out.output


def test_sound_journal_is_healthy_and_versioned(tmp_path: Path) -> None:
    Journal(tmp_path).close()
    with sqlite3.connect(tmp_path / "rollouts.db") as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 1
    out = cli("doctor", "--state-dir", str(tmp_path))
    assert out.exit_code == 0 and out.output.strip() == "healthy", out.output
