"""Signed locks with real ssh-keygen: a lock without a valid signature from the allowed signers is refused
(exit 2, naming the signer found or its absence) before anything under --root or the bundle output changes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.reliability.corpus import good_lock, one_error_line, reseal, run, tree


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    alice = _keygen(d / "alice", "alice")
    _keygen(d / "mallory", "mallory")
    (d / "allowed").write_text(f'alice@example.org namespaces="obsplan-lock" {alice}\n')
    (d / "other-namespace").write_text(f'alice@example.org namespaces="git" {alice}\n')
    return {"alice": d / "alice", "mallory": d / "mallory", "allowed": d / "allowed", "git": d / "other-namespace"}


@pytest.fixture
def signed(tmp_path: Path, keys: dict[str, Path]) -> Path:
    """`obsplan plan --sign-key` writes the lock and LOCK.sig."""
    good_lock(tmp_path)  # writes good-config/
    lock = tmp_path / "signed.lock"
    result = run(
        [
            "plan",
            "--config-dir",
            str(tmp_path / "good-config"),
            "--offline",
            "-o",
            str(lock),
            "--sign-key",
            str(keys["alice"]),
        ],
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "signed.lock.sig").read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    return lock


def _refused(tmp_path: Path, lock: Path, allowed: Path, expected: str) -> None:
    root, out = tmp_path / "root", tmp_path / "bundle-out"
    root.mkdir(exist_ok=True)
    before = tree(root)
    for args in (
        ["apply", str(lock), "--root", str(root), "--allowed-signers", str(allowed)],
        ["bundle", str(lock), "-o", str(out), "--allowed-signers", str(allowed)],
    ):
        result = run(args, tmp_path)
        assert result.exit_code == 2, (args, result.output, result.stderr)
        assert expected in one_error_line(result)
        assert tree(root) == before and not out.exists()


def test_valid_signature_accepted(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    result = run(
        [
            "apply",
            str(signed),
            "--root",
            str(tmp_path / "root"),
            "--dry-run",
            "--allowed-signers",
            str(keys["allowed"]),
        ],
        tmp_path,
    )
    assert "signed by alice@example.org" in result.stderr
    assert result.exit_code in (0, 1), result.output  # past the signature: the plan itself decides
    assert not (tmp_path / "root").exists()  # a dry run changes nothing


def test_unsigned_lock_refused(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "signed.lock.sig").unlink()
    _refused(tmp_path, signed, keys["allowed"], "no signature")


def test_signer_not_allowed_refused(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    result = run(["sign", str(signed), "--key", str(keys["mallory"])], tmp_path)
    assert result.exit_code == 0, result.output
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(keys["mallory"])], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    _refused(tmp_path, signed, keys["allowed"], f"signed by key {fingerprint}, which is not in")


def test_wrong_namespace_refused(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    _refused(tmp_path, signed, keys["git"], "not valid for this lock")


def test_forged_lock_with_old_signature_refused(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    """Re-sealing defeats the content hash, not the signature."""
    data = json.loads(signed.read_text())
    data["components"]["node_exporter"]["runtime"]["port"] = 9999
    signed.write_bytes(reseal(data))
    _refused(tmp_path, signed, keys["allowed"], "is not a valid obsplan-lock signature of these bytes")


def test_sign_refuses_a_forged_lock(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads(signed.read_text())
    data["components"]["node_exporter"]["version"] = "../../x"
    signed.write_bytes(reseal(data))
    sig_before = (tmp_path / "signed.lock.sig").read_bytes()
    result = run(["sign", str(signed), "--key", str(keys["alice"])], tmp_path)
    assert result.exit_code == 2 and "components.node_exporter.version" in one_error_line(result)
    assert (tmp_path / "signed.lock.sig").read_bytes() == sig_before
