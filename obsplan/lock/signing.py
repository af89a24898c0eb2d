"""Signed locks with OpenSSH's own tooling: `ssh-keygen -Y sign|verify`, namespace `obsplan-lock`.

The content hash inside a lock catches accidental edits; anyone can recompute it. A signature (`LOCK.sig`,
beside the lock) made with a reviewer's SSH key, checked against an allowed-signers file
(`ssh-keygen(1)`, ALLOWED SIGNERS), shows that someone holding a trusted key approved exactly these bytes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.raw_bytes import read_lock_bytes
from obsplan.safeio.fsio import write_atomic

NAMESPACE = "obsplan-lock"
_FINGERPRINT = re.compile(r"(?:RSA|ECDSA|ED25519|DSA|ECDSA-SK|ED25519-SK) key (SHA256:[A-Za-z0-9+/=]+)")
_PRINCIPAL = re.compile(r"signature for (.+?) with ")


def signature_path(lock: Path) -> Path:
    return lock.with_name(lock.name + ".sig")


def _ssh_keygen() -> str:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise ObsplanError(
            "ssh-keygen is not installed", hint="install openssh-client (apt-get install openssh-client)"
        )
    return exe


def _run(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([_ssh_keygen(), *args], input=stdin, capture_output=True, timeout=60, check=False)


def sign(lock: Path, key: Path, data: bytes | None = None) -> Path:
    """Write `LOCK.sig` signing `data` (the lock's exact bytes, read once by the caller that validated them;
    default: read now) with the SSH private key `key`."""
    if not key.is_file():
        raise ObsplanError(
            f"signing key {key} not found", key="--sign-key", hint="a private SSH key file, e.g. ~/.ssh/id_ed25519"
        )
    data = read_lock_bytes(lock) if data is None else data
    sig = signature_path(lock)
    proc = _run(["-Y", "sign", "-q", "-f", str(key), "-n", NAMESPACE], data)
    if proc.returncode != 0 or not proc.stdout.startswith(b"-----BEGIN SSH SIGNATURE-----"):
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ObsplanError(
            f"ssh-keygen could not sign with {key}: {detail[-1] if detail else 'failed'}",
            key="--sign-key",
            hint="a private SSH key without a passphrase, or one loaded in ssh-agent",
        )
    write_atomic(sig, proc.stdout, mode=0o644)  # a fresh temporary name: a planted `.LOCK.sig.tmp` link is not followed
    return sig


def verify(lock: Path, allowed_signers: Path, data: bytes) -> str:
    """The principal from `allowed_signers` whose key signed `data`, the lock's bytes as read once by the caller
    (`obsplan/lock/read.py`: the same bytes are then parsed and used); ObsplanError (exit 2) when there is no
    signature, it does not verify, or its signer is not in the file (naming the key found). The signature is
    read once too, into a private copy every ssh-keygen call uses."""
    if not allowed_signers.is_file():
        raise ObsplanError(
            f"allowed signers file {allowed_signers} not found",
            key="--allowed-signers",
            hint="lines of 'PRINCIPAL namespaces=\"obsplan-lock\" ssh-ed25519 AAAA...'",
        )
    sig_file = signature_path(lock)
    if not sig_file.is_file():
        raise ObsplanError(
            f"the lock has no signature (no {sig_file.name} beside it)",
            file=str(lock),
            key="signature",
            hint="sign it: obsplan sign LOCK --key KEY (or obsplan plan --sign-key KEY)",
        )
    signature = read_lock_bytes(sig_file, "lock signature")
    with tempfile.TemporaryDirectory(prefix="obsplan-sig-") as private:
        sig = Path(private) / sig_file.name
        sig.write_bytes(signature)
        return _verified(lock, allowed_signers, data, sig)


def _verified(lock: Path, allowed_signers: Path, data: bytes, sig: Path) -> str:
    found = _signer_key(sig, data, lock)
    who = _run(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)], b"")
    principals = who.stdout.decode(errors="replace").split()
    if who.returncode != 0 or not principals:
        raise ObsplanError(
            f"signed by key {found}, which is not in {allowed_signers}",
            file=str(lock),
            key="signature",
            hint="sign with a key listed there, or add the signer after review",
        )
    principal = principals[0]
    proc = _run(["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE, "-s", str(sig)], data)
    if proc.returncode != 0:
        raise ObsplanError(
            f"signature by {principal} (key {found}) is not valid for this lock under {allowed_signers}",
            file=str(lock),
            key="signature",
            hint="the signer may not be allowed the obsplan-lock namespace; re-sign after review",
        )
    return principal


def _signer_key(sig: Path, data: bytes, lock: Path) -> str:
    """The fingerprint of the key that made a signature valid for `data` (any key), else ObsplanError."""
    proc = _run(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data)
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    match = _FINGERPRINT.search(text)
    if proc.returncode != 0 or match is None:
        line = text.strip().splitlines()
        raise ObsplanError(
            f"{sig.name} is not a valid obsplan-lock signature of these bytes"
            f" ({line[-1] if line else 'ssh-keygen failed'})",
            file=str(lock),
            key="signature",
            hint="the lock changed after it was signed, or the signature is damaged: re-sign after review",
        )
    return match.group(1)
