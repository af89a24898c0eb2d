"""Breaking-change and advisory entries of the lock are typed (obsplan.lock.lockfile.BreakingChange, AdvisoryEntry):
the committed locks keep their bytes, and a lock whose entry carries an unknown key or a wrong type is refused
by every command that reads it (exit 2, one line naming the file and the key), before anything is written."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from obsplan.cli.main import main
from obsplan.lock.lockfile import AdvisoryEntry, BreakingChange, load_lock

ROOT = Path(__file__).resolve().parents[1]
STAGING = ROOT / "plans" / "staging.lock"


def _raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(STAGING.read_text(encoding="utf-8"))
    return data


def _first_breaking(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return next((i, s["breaking_changes"][0]) for i, s in enumerate(data["plan"]["steps"]) if s["breaking_changes"])


def _first_advisory(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return next((n, c["advisories"][0]) for n, c in sorted(data["components"].items()) if c["advisories"])


def _sealed(data: dict[str, Any]) -> str:
    """The lock text with `content_sha256` recomputed over the raw JSON, as `Lock.body_digest` does, so a refusal
    is about the entry itself and not about an edited lock."""
    body = {k: v for k, v in data.items() if k != "content_sha256"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    sealed = {**data, "content_sha256": hashlib.sha256(canonical.encode()).hexdigest()}
    return json.dumps(sealed, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# mutation name → (edit of a breaking entry or an advisory entry, the key path below the entry, message words)
Edit = Callable[[dict[str, Any]], None]
BREAKING: dict[str, tuple[Edit, str, str]] = {
    "unknown key": (lambda e: e.update(severity="high"), "severity", "Extra inputs are not permitted"),
    "text not a string": (lambda e: e.update(text=5), "text", "valid string"),
    "unknown marker": (lambda e: e.update(marker="maybe"), "marker", "Input should be"),
    "version not a version": (lambda e: e.update(version="../1.0"), "version", "must look like 1.2.3"),
    "missing key": (lambda e: e.pop("source"), "source", "Field required"),
}
ADVISORY: dict[str, tuple[Edit, str, str]] = {
    "unknown key": (lambda e: e.update(cvss="9.8"), "cvss", "Extra inputs are not permitted"),
    "bool as text": (lambda e: e.update(affects_target="yes"), "affects_target", "valid boolean"),
    "bool as number": (lambda e: e.update(affects_current=1), "affects_current", "valid boolean"),
    "id not one word": (lambda e: e.update(id="GO 2024 2629"), "id", "should match pattern"),
    "severity breaks the table": (lambda e: e.update(severity="HIGH|x"), "severity", "should match pattern"),
    "source not a list": (lambda e: e.update(source="GO-2024-2629.json"), "source", "valid list"),
    "missing key": (lambda e: e.pop("fixed_in"), "fixed_in", "Field required"),
}


def _case(kind: str, name: str) -> tuple[dict[str, Any], str, str]:
    """The staging lock with one entry edited; the key path the refusal must name; words of its message."""
    data = _raw()
    if kind == "breaking":
        edit, field, words = BREAKING[name]
        i, entry = _first_breaking(data)
        edit(entry)
        return data, f"plan.steps.{i}.breaking_changes.0.{field}", words
    edit, field, words = ADVISORY[name]
    comp, entry = _first_advisory(data)
    edit(entry)
    return data, f"components.{comp}.advisories.0.{field}", words


def _command(command: str, lock: Path, tmp_path: Path) -> list[str]:
    if command == "apply":
        return ["apply", str(lock), "--root", str(tmp_path / "root")]
    if command == "report":
        return ["report", str(lock), "-o", str(tmp_path / "report.md")]
    bundle = tmp_path / "bundle"  # a bundle directory whose lock was edited: verified lock first
    bundle.mkdir(exist_ok=True)
    (bundle / "obsplan.lock").write_bytes(lock.read_bytes())
    return ["bundle", "--verify", str(bundle)]


def _lock_file(command: str, lock: Path, tmp_path: Path) -> str:
    return str(tmp_path / "bundle" / "obsplan.lock") if command == "bundle-verify" else str(lock)


COMMANDS = ["apply", "report", "bundle-verify"]
CASES = [("breaking", n) for n in BREAKING] + [("advisory", n) for n in ADVISORY]


def test_committed_locks_keep_their_bytes() -> None:
    """Read and written again through the typed entries, each committed lock is byte-identical (absent stays
    absent, nothing is added), and it carries both kinds of entries."""
    for path in sorted((ROOT / "plans").glob("*.lock")):
        lock = load_lock(path)
        assert lock.to_json() == path.read_text(encoding="utf-8"), path
        assert lock.content_sha256 == lock.body_digest()
    lock = load_lock(STAGING)
    assert any(isinstance(b, BreakingChange) for s in lock.plan.steps for b in s.breaking_changes)
    assert any(isinstance(a, AdvisoryEntry) for c in lock.components.values() for a in c.advisories)


def test_resealed_unchanged_lock_is_read(tmp_path: Path) -> None:
    """The control for the refusals below: resealing the raw JSON gives the lock's own bytes and hash."""
    lock = tmp_path / "staging.lock"
    lock.write_text(_sealed(_raw()), encoding="utf-8")
    assert lock.read_text(encoding="utf-8") == STAGING.read_text(encoding="utf-8")
    result = CliRunner().invoke(main, _command("report", lock, tmp_path))
    assert result.exit_code == 0, result.output
    assert "## Advisories" in (tmp_path / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("kind", "name"), CASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_entry_refused_naming_file_and_key(command: str, kind: str, name: str, tmp_path: Path) -> None:
    data, key, words = _case(kind, name)
    lock = tmp_path / "edited.lock"
    lock.write_text(_sealed(data), encoding="utf-8")
    result = CliRunner().invoke(main, _command(command, lock, tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{_lock_file(command, lock, tmp_path)}: {key}: " in lines[0] and words in lines[0], lines[0]
    assert "content_sha256" not in lines[0]
    assert not (tmp_path / "root").exists() and not (tmp_path / "report.md").exists()


def test_bad_entry_refused_by_the_installed_command_as_json(tmp_path: Path) -> None:
    """The real `obsplan` process: exit 2 and, under --json, the key as a field of the one error object."""
    data, key, _ = _case("advisory", "unknown key")
    lock = tmp_path / "edited.lock"
    lock.write_text(_sealed(data), encoding="utf-8")
    proc = subprocess.run(
        ["obsplan", "apply", str(lock), "--root", str(tmp_path / "root"), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    error = json.loads(proc.stderr)
    assert (error["file"], error["key"], error["exit_code"]) == (str(lock), key, 2)
    assert not (tmp_path / "root").exists()


def test_entries_left_unchanged_by_a_deep_copy_round_trip() -> None:
    """Each entry of the committed lock validates alone and dumps to exactly its JSON object."""
    data = _raw()
    for step in data["plan"]["steps"]:
        for raw in step["breaking_changes"]:
            assert BreakingChange.model_validate(copy.deepcopy(raw)).model_dump(mode="json") == raw
    for comp in data["components"].values():
        for raw in comp["advisories"]:
            assert AdvisoryEntry.model_validate(copy.deepcopy(raw)).model_dump(mode="json") == raw
