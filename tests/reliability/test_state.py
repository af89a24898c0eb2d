"""state.db that can be trusted or repaired: a schema version, a broken database stops every command at start
(exit 1, what is wrong, the recovery command) without being touched, `obsplan doctor [--repair]`, and an
install deleted behind obsplan's back is not up to date."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from obsplan.executor.state.state_db import StateDB
from obsplan.executor.state.state_schema import SCHEMA_VERSION

from tests.reliability.hostile import NAME, NEW, OLD, Host, apply, cli, host, tar_member, write_lock, write_tar


def _db(h: Host) -> Path:
    return h.root / "var/lib/obsplan/state.db"


def _healthy_state(h: Host, tmp_path: Path) -> Path:
    """What a finished apply of 1.0.0 leaves: state rows, the applied lock, a unit."""
    with StateDB(_db(h)) as db:
        db.set_installed(NAME, OLD, last_result="ok")
    good = write_tar(tmp_path / "tool-2.0.0.tar.gz", [tar_member("tool-2.0.0/tool", data=b"#!/bin/sh\n", mode=0o755)])
    lock = write_lock(tmp_path / "t.lock", good, "tar.gz")
    shutil.copyfile(lock, h.root / "var/lib/obsplan/applied-lock.json")
    unit = h.root / "etc/supervisor/conf.d" / f"{NAME}.conf"
    unit.parent.mkdir(parents=True)
    unit.write_text("[program:tool]\n")
    return lock


def _break(db: Path, how: str) -> None:
    data = db.read_bytes()
    if how == "garbage":
        db.write_bytes(b"this is not a database\n" * 300)
    elif how == "truncated":
        db.write_bytes(data[: len(data) // 2])
    elif how == "zeroed_page":
        db.write_bytes(data[:4096] + bytes(4096) + data[8192:])
    elif how == "foreign":
        db.unlink()
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE photos (id INTEGER, path TEXT)")
        conn.close()
    elif how == "foreign_columns":
        db.unlink()
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE installed_components (name TEXT, release TEXT)")
        conn.close()
    elif how == "newer":
        with sqlite3.connect(db) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.close()
    elif how == "directory":
        db.unlink()
        db.mkdir()
    else:  # pragma: no cover
        raise AssertionError(how)


BROKEN = ["garbage", "truncated", "zeroed_page", "foreign", "foreign_columns", "newer", "directory"]


@pytest.mark.parametrize("how", BROKEN)
def test_broken_database_stops_every_command_untouched(tmp_path: Path, how: str) -> None:
    with host() as h:
        lock = _healthy_state(h, tmp_path)
        _break(_db(h), how)
        before_out, before_in = h.outside(), h.installed_tree()
        state_before = {p.name: p.read_bytes() for p in _db(h).parent.glob("state.db*") if p.is_file()}
        for args in (
            ["status"],
            ["history"],
            ["apply", str(lock), "--artifacts", str(tmp_path)],
            ["apply", str(lock), "--dry-run"],
            ["rollback", NAME, "--list"],
        ):
            out = cli(*args, "--root", str(h.root))
            assert out.exit_code == 1, (args, out.output)
            assert f"state database {_db(h)}" in out.output, out.output
            recovery = "newer obsplan" if how == "newer" else f"obsplan doctor --root {h.root} --repair"
            assert recovery in out.output
            assert "Traceback" not in out.output and "internal error" not in out.output
        h.assert_untouched(before_out, before_in)
        assert {p.name: p.read_bytes() for p in _db(h).parent.glob("state.db*") if p.is_file()} == state_before


def test_schema_version_is_written_and_old_databases_are_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "var/lib/obsplan/state.db"
    StateDB(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
        conn.execute("PRAGMA user_version = 0")  # as written before versioning
        conn.execute("ALTER TABLE upgrade_history DROP COLUMN unverified")  # before that migration
    conn.close()
    with StateDB(path) as db:
        db.set_installed("x", "1.0.0")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "unverified" in {r[1] for r in conn.execute("PRAGMA table_info(upgrade_history)")}
    conn.close()


def _doctor(h: Host, *extra: str) -> tuple[int, dict]:
    out = cli("doctor", "--root", str(h.root), "--service-manager", "supervisord", "--json", *extra)
    return out.exit_code, json.loads(out.output[out.output.index("{") :])


def test_doctor_healthy_host(tmp_path: Path) -> None:
    with host() as h:
        _healthy_state(h, tmp_path)
        code, report = _doctor(h)
        assert (code, report["findings"], report["healthy"]) == (0, [], True)


@pytest.mark.parametrize("how", ["garbage", "truncated", "foreign", "newer"])
def test_doctor_repair_moves_the_database_aside_and_rebuilds_from_the_host(tmp_path: Path, how: str) -> None:
    with host() as h:
        _healthy_state(h, tmp_path)
        _break(_db(h), how)
        broken = _db(h).read_bytes()
        code, report = _doctor(h)
        assert code == 1 and [f["check"] for f in report["findings"]] == ["database"]
        assert _db(h).read_bytes() == broken  # without --repair nothing changes
        code, report = _doctor(h, "--repair")
        assert code == 0, report
        aside = Path(report["moved_aside"])
        assert aside.parent == _db(h).parent and aside.read_bytes() == broken  # kept, never deleted
        with StateDB(_db(h), read_only=True) as db:
            row = db.installed(NAME)
            assert row is not None and (row["version"], row["source"]) == (OLD, "doctor:current_link")
        assert cli("status", "--root", str(h.root), "--json").exit_code == 0
        assert _doctor(h)[0] == 0


def test_deleted_version_directory_is_reported_not_healthy(tmp_path: Path) -> None:
    with host() as h:
        _healthy_state(h, tmp_path)
        shutil.rmtree(h.opt / OLD)
        code, report = _doctor(h)
        problems = [f["problem"] for f in report["findings"] if f["check"] == "install"]
        assert code == 1 and any("is missing" in p for p in problems) and any("dangles" in p for p in problems)
        out = cli("status", "--root", str(h.root), "--service-manager", "supervisord", "--json")
        (entry,) = json.loads(out.output)
        assert entry["health"] == "broken" and entry["up_to_date"] is False and entry["problems"]


def test_state_out_of_step_with_the_host_is_resynced(tmp_path: Path) -> None:
    with host() as h:
        _healthy_state(h, tmp_path)
        with StateDB(_db(h)) as db:
            db.set_installed(NAME, "0.9.0")
        code, report = _doctor(h)
        assert code == 1 and report["findings"][0]["check"] == "state"
        code, report = _doctor(h, "--repair")
        assert code == 0 and report["findings"][0]["repaired"]
        with StateDB(_db(h), read_only=True) as db:
            assert db.installed(NAME)["version"] == OLD  # type: ignore[index]


def test_apply_dry_run_on_a_broken_host_is_a_refusal_not_nothing_to_do(tmp_path: Path) -> None:
    with host() as h:
        lock = _healthy_state(h, tmp_path)
        os.unlink(h.root / "usr/local/bin" / NAME)
        out = apply(h, lock, "--dry-run")
        assert not any(e["event"] == "nothing_to_do" for e in out.events)


def test_repair_rebuilds_the_rollback_floor_from_the_applied_lock(tmp_path: Path) -> None:
    """A floor is a safety fact (never roll back below it): a rebuilt database must not lose it."""
    with host() as h:
        _healthy_state(h, tmp_path)
        good = tmp_path / "tool-2.0.0.tar.gz"
        lock = write_lock(tmp_path / "f.lock", good, "tar.gz", floor="1.5.0")
        shutil.copyfile(lock, h.root / "var/lib/obsplan/applied-lock.json")
        (h.opt / NEW / "tool-2.0.0").mkdir(parents=True)
        (h.opt / NEW / "tool-2.0.0" / "tool").write_text("#!/bin/sh\n")
        os.unlink(h.opt / "current")
        os.symlink(NEW, h.opt / "current")
        exposed = h.root / "usr/local/bin" / NAME
        os.unlink(exposed)
        os.symlink("../../../opt/obsplan/tool/current/tool-2.0.0/tool", exposed)
        _break(_db(h), "garbage")
        code, report = _doctor(h, "--repair")
        assert code == 0, report
        with StateDB(_db(h), read_only=True) as db:
            row = db.installed(NAME)
            assert row is not None and (row["version"], row["floor"]) == (NEW, "1.5.0")
