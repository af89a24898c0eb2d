"""obsplan's own files are never opened through a link (issue 18, item 7).

A link planted where state.db, its -wal, apply.lock, the holder file, the applied lock copy, the audit log, the
metrics file or the rollout journal rollouts.db belongs, pointing outside the root (at another obsplan database,
a file, or nowhere): `apply`, `status` and `rollout --status` refuse with exit 2 naming the file, and nothing
outside the root is read into, written or created. A directory of obsplan's (metrics, backups, the log
directory) linked outside the root is refused the same way. Links inside the root (the state directory moved
to another disk under the root) and obsplan's own deliberate links (`current`, `/usr/local/bin`) keep working."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import ObsplanError
from tests.reliability.corpus import run
from tests.reliability.hostile import NAME, OLD, Host, Outcome, apply, cli, host, tar_member, write_lock, write_tar

STATE = "var/lib/obsplan"
OWN_FILES = [
    f"{STATE}/state.db",
    f"{STATE}/state.db-wal",
    f"{STATE}/state.db-journal",
    f"{STATE}/apply.lock",
    f"{STATE}/apply.lock.holder",
    f"{STATE}/applied-lock.json",
    f"{STATE}/metrics/obsplan.prom",
    "var/log/obsplan/audit.jsonl",
]
OWN_DIRS = [f"{STATE}/metrics", f"{STATE}/backups", "var/log/obsplan"]


def _failing_lock(tmp_path: Path) -> tuple[Path, Path]:
    """A lock whose artifact is present but does not match its checksum: the run opens every own file, then the
    step fails (exit 1) without touching the installed version."""
    (tmp_path / "arts").mkdir()
    art = write_tar(tmp_path / "arts" / "tool-2.0.0.tar.gz", [tar_member("tool-2.0.0/tool", data=b"#!/bin/sh\n")])
    return write_lock(tmp_path / "t.lock", art, "tar.gz", sha="0" * 64), art.parent


def _outside_db(h: Host) -> Path:
    """Another obsplan database, outside the root."""
    other = h.outer / "other" / "state.db"
    other.parent.mkdir(parents=True)
    with StateDB(other) as db:
        db.set_installed("victim", "9.9.9", last_result="ok")
    return other


def _refusal(out: Outcome) -> dict[str, Any]:
    """The one error object `apply --json` prints."""
    (err,) = [e for e in out.events if "error" in e]
    return err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.mark.parametrize("own", OWN_FILES)
@pytest.mark.parametrize("target", ["database", "file", "dangling"])
def test_a_link_to_an_own_file_is_refused(tmp_path: Path, own: str, target: str) -> None:
    lock, arts = _failing_lock(tmp_path)
    with host() as h:
        link = h.root / own
        link.parent.mkdir(parents=True, exist_ok=True)
        dest = {"database": _outside_db(h), "file": h.outer / "file", "dangling": h.outer / "nowhere" / "x"}[target]
        if target == "file":
            dest.write_text("precious\n")
        link.symlink_to(dest)
        before, outside = _digest(dest), h.outside()
        installed = h.installed_tree()
        out = apply(h, lock, "--artifacts", str(arts))
        assert out.exit_code == 2, out.output
        err = _refusal(out)
        assert err["file"] == str(link) and "symbolic link" in err["error"] and err["exit_code"] == 2
        assert _digest(dest) == before and not (h.outer / "nowhere").exists()
        h.assert_untouched(outside, installed)


@pytest.mark.parametrize("own", OWN_DIRS)
def test_an_own_directory_linked_outside_the_root_is_refused(tmp_path: Path, own: str) -> None:
    lock, arts = _failing_lock(tmp_path)
    with host() as h:
        away = h.outer / "away"
        away.mkdir()
        (h.root / own).parent.mkdir(parents=True, exist_ok=True)
        (h.root / own).symlink_to(away)
        outside, installed = h.outside(), h.installed_tree()
        out = apply(h, lock, "--artifacts", str(arts))
        assert out.exit_code == 2, out.output
        err = _refusal(out)
        assert str(h.root / own) in err["error"] and "outside the root" in err["error"]
        h.assert_untouched(outside, installed)


def test_reading_commands_refuse_a_linked_state_database(tmp_path: Path) -> None:
    with host() as h:
        link = h.root / STATE / "state.db"
        link.parent.mkdir(parents=True)
        other = _outside_db(h)
        link.symlink_to(other)
        before = _digest(other)
        out = cli("status", "--root", str(h.root))
        assert out.exit_code == 2 and f"{link}:" in out.output, out.output
        assert _digest(other) == before


def test_links_inside_the_root_and_deliberate_links_keep_working(tmp_path: Path) -> None:
    """The state directory and the log directory moved to another place under the root (links inside the root):
    the run opens everything, the step fails on the checksum (exit 1), the files land where the links point."""
    lock, arts = _failing_lock(tmp_path)
    with host() as h:
        for own, moved in ((STATE, "data/obsplan-state"), ("var/log/obsplan", "data/obsplan-log")):
            (h.root / moved).mkdir(parents=True)
            (h.root / own).parent.mkdir(parents=True, exist_ok=True)
            (h.root / own).symlink_to(h.root / moved)
        outside = h.outside()
        out = apply(h, lock, "--artifacts", str(arts))
        assert out.exit_code == 1, out.output
        assert (h.root / "data/obsplan-state/state.db").is_file()
        assert (h.root / "data/obsplan-log/audit.jsonl").stat().st_size > 0
        assert (h.root / "data/obsplan-state/metrics/obsplan.prom").is_file()
        assert h.outside() == outside
        assert os.readlink(h.opt / "current") == OLD and (h.root / "usr/local/bin" / NAME).is_symlink()


@pytest.mark.parametrize("target", ["database", "dangling"])
def test_a_linked_rollout_journal_is_refused(tmp_path: Path, target: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    other = tmp_path / "elsewhere" / "rollouts.db"
    other.parent.mkdir()
    if target == "database":
        from obsplan.rollout.journal.rollouts_db import Journal

        Journal(other.parent).close()
    (state / "rollouts.db").symlink_to(other)
    before = _digest(other)
    result = run(["rollout", "--status", "--state-dir", str(state)], tmp_path)
    assert result.exit_code == 2, result.output
    assert f"{state / 'rollouts.db'}:" in result.output and "symbolic link" in result.output
    assert _digest(other) == before


def test_a_fifo_as_the_apply_lock_is_refused_without_waiting(tmp_path: Path) -> None:
    lock, arts = _failing_lock(tmp_path)
    with host() as h:
        fifo = h.root / STATE / "apply.lock"
        fifo.parent.mkdir(parents=True)
        os.mkfifo(fifo)
        out = apply(h, lock, "--artifacts", str(arts))
        assert out.exit_code == 2, out.output
        assert _refusal(out)["file"] == str(fifo) and "not a regular file" in _refusal(out)["error"]


def test_metrics_file_stays_readable_by_the_textfile_collector(tmp_path: Path) -> None:
    """Written atomically without following a link, and still mode 0644 as node_exporter's collector needs."""
    from obsplan.executor.state.metrics import write_metrics

    prom = tmp_path / "metrics" / "obsplan.prom"
    with StateDB(tmp_path / "state.db") as db:
        db.set_installed(NAME, OLD, last_result="ok")
        write_metrics(db, prom)
        assert prom.stat().st_mode & 0o777 == 0o644 and "obsplan_" in prom.read_text()
        prom.unlink()
        prom.symlink_to(tmp_path / "elsewhere")
        with pytest.raises(ObsplanError, match="symbolic link"):
            write_metrics(db, prom)
    assert not (tmp_path / "elsewhere").exists()
