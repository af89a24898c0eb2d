"""`obsplan sign LOCK`, and the `--sign-key` / `--allowed-signers` options other commands share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from obsplan.cli.edge import emit_json, guarded
from obsplan.cli.shared_options import json_option

if TYPE_CHECKING:
    from obsplan.lock.read import LockFile

DEFAULT_KEY_ENV = "OBSPLAN_SIGN_KEY"


def sign_key_option(f: Any) -> Any:
    return click.option(
        "--sign-key",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Sign the written lock with this SSH private key (ssh-keygen -Y sign; writes LOCK.sig).",
    )(f)


def open_signed(lock: Path, allowed_signers: Path | None) -> LockFile:
    """LOCK read once; with an allowed-signers file, its signature verified over those bytes (ObsplanError,
    exit 2, otherwise) and the signer printed; the caller uses the returned bytes and lock, never the path."""
    from obsplan.lock.read import open_lock

    opened = open_lock(lock, allowed_signers)
    if opened.signer is not None:
        click.echo(f"{lock}: signed by {opened.signer} ({allowed_signers})", err=True)
    return opened


def sign_lock(lock: Path, key: Path, data: bytes | None = None) -> Path:
    """Sign `data` (the lock's bytes as read and validated; default: read `lock` now) into LOCK.sig."""
    import obsplan.lock.signing as signing

    return signing.sign(lock, key, data)


@click.command("sign")
@click.argument("lock", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"SSH private key [default: ${DEFAULT_KEY_ENV}, else ~/.ssh/id_ed25519].",
)
@json_option
@guarded
def sign_cmd(lock: Path, key: Path | None, as_json: bool) -> None:
    """Sign a lock with an SSH key (ssh-keygen -Y sign).

    Sign LOCK's exact bytes with an SSH key (ssh-keygen -Y sign, namespace obsplan-lock) into LOCK.sig.

    The lock is validated first (content hash, path policy): a lock obsplan would refuse is never signed."""
    from obsplan.lock.read import open_lock

    opened = open_lock(lock)
    key = key or Path(os.environ.get(DEFAULT_KEY_ENV) or Path.home() / ".ssh" / "id_ed25519")
    sig = sign_lock(lock, key, opened.data)
    if as_json:
        emit_json({"lock": str(lock), "signature": str(sig)})
        return
    click.echo(f"wrote {sig}")


def register(group: click.Group) -> None:
    group.add_command(sign_cmd)
