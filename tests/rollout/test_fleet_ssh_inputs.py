"""What a rollout or a facts pass checks on the controller before it contacts any host (issue 22): the hosts'
SSH key and known_hosts files, and `facts --inventory -o DIR`'s folder (written into again on the next
collection; a host that gives no facts keeps no facts that read as current). No SSH server is needed: the
hosts here refuse connections (a closed port on 127.0.0.1), or are never contacted."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "plans" / "production.lock"


def _obsplan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "obsplan", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ssh_files(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text("")
    return key, known


def _inventory(tmp_path: Path, key: Path, known: Path, names: tuple[str, ...] = ("a", "b")) -> Path:
    port = _closed_port()
    hosts = {n: {"address": "127.0.0.1", "port": port, "components": ["node_exporter"]} for n in names}
    path = tmp_path / "hosts.yaml"
    defaults = {"ssh_key": str(key), "known_hosts": str(known), "root": str(tmp_path / "root")}
    path.write_text(json.dumps({"defaults": defaults, "hosts": hosts}))
    return path


@pytest.mark.parametrize("missing", ["ssh_key", "known_hosts"])
def test_a_missing_ssh_file_stops_facts_and_rollout_before_any_host(
    tmp_path: Path, ssh_files: tuple[Path, Path], missing: str
) -> None:
    key, known = ssh_files
    gone = {"ssh_key": key, "known_hosts": known}[missing]
    gone.unlink()
    inv = _inventory(tmp_path, key, known)
    out = tmp_path / "facts"

    facts = _obsplan("facts", "--inventory", inv, "-o", out)
    assert facts.returncode == 2, facts.stderr
    assert f"{inv}: a.{missing}: {gone} does not exist" in facts.stderr, facts.stderr
    assert len(facts.stderr.strip().splitlines()) == 1 and not out.exists()

    state = tmp_path / "state"
    rollout = _obsplan("rollout", LOCK, "--inventory", inv, "--state-dir", state, "--canary", "1")
    assert rollout.returncode == 2 and f"a.{missing}" in rollout.stderr, rollout.stdout + rollout.stderr
    assert "a:" not in rollout.stdout  # no host was tried
    status = _obsplan("rollout", "--status", "--state-dir", state)
    assert "no rollout in the journal" in status.stderr, status.stdout + status.stderr

    # a dry run and an Ansible export need no key on this controller
    assert _obsplan("rollout", LOCK, "--inventory", inv, "--dry-run").returncode == 0
    export = _obsplan("export", "ansible", LOCK, "--inventory", inv, "-o", tmp_path / "ansible")
    assert export.returncode == 0, export.stderr


def test_facts_into_the_same_folder_again_and_an_unreachable_host_keeps_no_current_facts(
    tmp_path: Path, ssh_files: tuple[Path, Path]
) -> None:
    inv = _inventory(tmp_path, *ssh_files)
    out = tmp_path / "facts"
    out.mkdir()
    earlier = out / "a.json"
    earlier.write_text('{"collected": "last week"}\n')

    first = _obsplan("facts", "--inventory", inv, "-o", out)
    assert first.returncode == 1, first.stderr
    assert "a: no facts:" in first.stderr and "its earlier a.json is now a.json.stale" in first.stderr, first.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json.stale"]
    assert (out / "a.json.stale").read_text() == '{"collected": "last week"}\n'

    again = _obsplan("facts", "--inventory", inv, "-o", out)  # the folder exists now: written into again
    assert again.returncode == 1 and "Invalid value" not in again.stderr, again.stderr
    assert "b: no facts:" in again.stderr and ".stale" not in again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json.stale"]


def test_facts_output_must_be_a_folder_with_inventory_and_a_file_without(
    tmp_path: Path, ssh_files: tuple[Path, Path]
) -> None:
    inv = _inventory(tmp_path, *ssh_files)
    a_file = tmp_path / "facts.json"
    a_file.write_text("keep")
    refused = _obsplan("facts", "--inventory", inv, "-o", a_file)
    assert refused.returncode == 2 and f"{a_file}: -o: -o is not a folder" in refused.stderr, refused.stderr
    assert a_file.read_text() == "keep"

    folder = tmp_path / "dir"
    folder.mkdir()
    local = _obsplan("facts", "--root", tmp_path / "root", "-o", folder)
    assert local.returncode == 2 and f"{folder}: -o: -o is a folder" in local.stderr, local.stderr
    assert list(folder.iterdir()) == []
