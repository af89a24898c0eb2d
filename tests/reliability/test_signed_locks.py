"""Signed locks with real ssh-keygen: a lock without a valid signature from the allowed signers is refused
(exit 2, naming the signer found or its absence) before anything under --root or the bundle output changes."""

from __future__ import annotations

import json
import os
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


def test_a_lock_swapped_after_its_signature_check_is_not_what_is_used(
    signed: Path, keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock's bytes are read once: a watcher swapping the file right after that read (here: the moment the
    read returns) cannot change what is verified, applied or kept; the forged lock never runs."""
    import obsplan.lock.read as lock_read

    signed_doc = json.loads(signed.read_bytes())
    forged_doc = json.loads(signed.read_bytes())
    forged_doc["components"]["node_exporter"]["runtime"]["port"] = 9999
    forged = reseal(forged_doc)
    reads: list[Path] = []
    real_read = lock_read.read_lock_bytes

    def read_then_swap(path: Path, *args: object) -> bytes:
        data = real_read(path, *args)  # type: ignore[arg-type]
        reads.append(path)
        signed.write_bytes(forged)  # the watcher's swap, after the read
        return data

    monkeypatch.setattr(lock_read, "read_lock_bytes", read_then_swap)
    root = tmp_path / "root"
    args = ["apply", str(signed), "--root", str(root), "--dry-run", "--json", "--allowed-signers", str(keys["allowed"])]
    result = run(args, tmp_path)
    assert "signed by alice@example.org" in result.stderr and result.exit_code in (0, 1), result.output
    started = json.loads(result.stdout.splitlines()[0])
    assert started["metadata"]["lock_sha256"] == signed_doc["content_sha256"] != json.loads(forged)["content_sha256"]
    assert reads == [signed] and signed.read_bytes() == forged  # read once; the swap happened, too late
    result = run(args, tmp_path)  # the next run reads the forged bytes: refused before anything runs
    assert result.exit_code == 2 and "is not a valid obsplan-lock signature of these bytes" in result.output


def test_a_lock_that_is_a_link_or_not_a_regular_file_is_refused(signed: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.lock"
    link.symlink_to(signed)
    fifo = tmp_path / "fifo.lock"
    os.mkfifo(fifo)
    for path, expected in ((link, "lock is a symbolic link"), (fifo, "lock is not a regular file")):
        for args in (["report", str(path)], ["apply", str(path), "--dry-run", "--root", str(tmp_path / "r")]):
            result = run(args, tmp_path)
            assert result.exit_code == 2 and expected in one_error_line(result), (args, result.output)


def test_signing_never_follows_a_planted_temporary_link(keys: dict[str, Path], tmp_path: Path) -> None:
    """The signature used to be written to the predictable `.LOCK.sig.tmp` and renamed: a link planted under that
    name (a shared plans folder) made `obsplan sign`, run as root, write through it."""
    good_lock(tmp_path)
    lock = tmp_path / "prod.lock"
    made = run(["plan", "--config-dir", str(tmp_path / "good-config"), "--offline", "-o", str(lock)], tmp_path)
    assert made.exit_code == 0, made.output
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / ".prod.lock.sig.tmp").symlink_to(victim)
    result = run(["sign", str(lock), "--key", str(keys["alice"])], tmp_path)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "untouched\n"
    sig = tmp_path / "prod.lock.sig"
    assert sig.read_text().startswith("-----BEGIN SSH SIGNATURE-----") and not sig.is_symlink()
    assert oct(sig.stat().st_mode & 0o777) == "0o644"
