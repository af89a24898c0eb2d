"""`obsplan bundle`: build, verify or extract an air-gapped bundle of a lock. Parse, call one function, render."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from obsplan.lock.read import LockFile

from obsplan.cli.edge import emit_json, guarded
from obsplan.cli.shared_options import (
    allow_unverified_option,
    allowed_signers_option,
    json_option,
    output_bundle_option,
)
from obsplan.cli.sign_command import open_signed
from obsplan.executor.bundle import tarball
from obsplan.executor.bundle.build import build_bundle
from obsplan.executor.bundle.verify import VerifyResult, verify_bundle
from obsplan.executor.bundle.wheelhouse_build import WheelOptions, build_wheelhouse
from obsplan.executor.reporters import ConsoleReporter
from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.wheelhouse import WheelhouseIndex

EPILOG = (
    "Exit codes: 0 ok, 1 a download or checksum did not match the lock, an artifact has no sha256 (without "
    "--allow-unverified), or --verify found a problem, 2 bad input (lock edited after it was generated or of "
    "another format, unknown platform, bad flags), 3 internal error."
)


def _render_verify(result: VerifyResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        flagged = f"; {len(result.unverified)} UNVERIFIED artifact(s)" if result.unverified else ""
        click.echo(
            f"ok: {result.directory} matches its lock ({result.files_checked} files checked, "
            f"platforms {', '.join(result.platforms)}){flagged}"
        )
    else:
        for p in result.problems:
            click.echo(f"{p.problem:<16} {p.path}: {p.detail}")
        click.echo(f"{result.directory}: {len(result.problems)} problem(s); the bundle must not be applied", err=True)
    for path in result.unverified:
        click.echo(f"WARNING: {path} is UNVERIFIED (the lock has no sha256 for it)", err=True)
    if not result.ok:
        sys.exit(EXIT_FAILED)


@click.command("bundle", epilog=EPILOG)
@click.argument("lock", required=False, type=click.Path(dir_okay=False, path_type=Path))
@output_bundle_option("Bundle directory, or FILE.tar for one plain tar to carry (with --extract: the directory).")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS-ARCH",
    help="Only these platforms (repeatable; default: every platform in the lock).",
)
@allow_unverified_option("Bundle artifacts the lock has no sha256 for (flagged in the manifest, loud warning).")
@click.option(
    "--verify",
    "verify_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Re-check every file of this bundle directory against the lock inside it.",
)
@click.option(
    "--extract",
    "extract_tar",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Extract a bundle tar safely into -o DIR, then verify it.",
)
@click.option(
    "--with-obsplan",
    is_flag=True,
    help="Add a wheelhouse: obsplan itself, its dependencies and pip, for `rollout --bootstrap`.",
)
@click.option("--python-version", metavar="X.Y", help="With --with-obsplan: the hosts' Python (pip download's).")
@click.option(
    "--python-platform",
    metavar="TAG",
    help="With --with-obsplan: the hosts' wheel platform, e.g. manylinux2014_x86_64 (pip download's --platform).",
)
@click.option(
    "--find-links",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="With --with-obsplan: a local directory of wheels to take them from (repeatable).",
)
@click.option("--no-index", is_flag=True, help="With --with-obsplan: only --find-links, never the package index.")
@allowed_signers_option
@json_option
@guarded
def bundle_cmd(
    lock: Path | None,
    output: Path | None,
    platforms: tuple[str, ...],
    allow_unverified: bool,
    verify_dir: Path | None,
    extract_tar: Path | None,
    with_obsplan: bool,
    python_version: str | None,
    python_platform: str | None,
    find_links: tuple[Path, ...],
    no_index: bool,
    allowed_signers: Path | None,
    as_json: bool,
) -> None:
    """Build, verify or extract an air-gapped bundle of a lock.

    Download exactly the artifacts LOCK names (and their upstream checksum files), verified against the
    lock, into a self-contained directory or tar to carry into an air-gapped network.

    Then, on the air-gapped host: obsplan apply LOCK --bundle DIR|FILE.tar"""
    _check_modes(lock, verify_dir, extract_tar, allowed_signers)
    wheel_opts = _wheel_options(with_obsplan, python_version, python_platform, find_links, no_index)
    if verify_dir is not None:
        _render_verify(verify_bundle(verify_dir), as_json)
        return
    if output is None:
        raise ObsplanError("-o is required", key="-o", hint="a directory, or FILE.tar for a single file")
    if extract_tar is not None:
        tarball.extract_tar(extract_tar, output)
        _render_verify(verify_bundle(output), as_json)
        return
    assert lock is not None
    _build(open_signed(lock, allowed_signers), output, list(platforms), allow_unverified, as_json, wheel_opts)


def _wheel_options(
    with_obsplan: bool,
    python_version: str | None,
    python_platform: str | None,
    find_links: tuple[Path, ...],
    no_index: bool,
) -> WheelOptions | None:
    given = [
        n
        for n, v in (
            ("--python-version", python_version),
            ("--python-platform", python_platform),
            ("--find-links", find_links),
            ("--no-index", no_index),
        )
        if v
    ]
    if not with_obsplan:
        if given:
            raise ObsplanError(f"{given[0]} only goes with --with-obsplan", key=given[0], hint="add --with-obsplan")
        return None
    if python_version is not None and not re.fullmatch(r"3\.\d{1,2}", python_version):
        raise ObsplanError(f"--python-version {python_version!r} is not X.Y", key="--python-version", hint="e.g. 3.11")
    if no_index and not find_links:
        raise ObsplanError("--no-index needs --find-links DIR", key="--no-index", hint="a directory of wheels")
    return WheelOptions(python_version, python_platform, list(find_links), no_index)


def _check_modes(
    lock: Path | None, verify_dir: Path | None, extract_tar: Path | None, allowed_signers: Path | None
) -> None:
    """Exactly one of build (LOCK), --verify and --extract; --allowed-signers only with a LOCK to check."""
    modes = [m for m, v in (("LOCK", lock), ("--verify", verify_dir), ("--extract", extract_tar)) if v]
    if len(modes) != 1:
        raise ObsplanError(
            f"give exactly one of LOCK, --verify DIR, --extract FILE.tar (got {', '.join(modes) or 'none'})",
            hint="obsplan bundle LOCK -o DIR | --verify DIR | --extract FILE.tar -o DIR",
        )
    if allowed_signers is not None and lock is None:
        raise ObsplanError(
            "--allowed-signers checks LOCK's signature; give LOCK",
            key="--allowed-signers",
            hint="verify the lock before carrying it: obsplan bundle LOCK -o DIR --allowed-signers FILE",
        )


def _build(
    opened: LockFile,
    output: Path,
    platforms: list[str],
    allow_unverified: bool,
    as_json: bool,
    wheels: WheelOptions | None,
) -> None:
    reporter = None if as_json else ConsoleReporter(sys.stdout)
    lock = opened.path
    built: list[WheelhouseIndex] = []
    then = None if wheels is None else (lambda d: built.append(build_wheelhouse(d, wheels)))
    result = build_bundle(
        opened, output, platforms or None, allow_unverified=allow_unverified, reporter=reporter, then=then
    )
    for warning in result.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    if as_json:
        emit_json({**result.to_dict(), **({"wheelhouse": json.loads(built[0].to_json())} if built else {})})
        return
    if built:
        click.echo(
            f"wheelhouse: {len(built[0].wheels)} wheels (obsplan {built[0].obsplan_version}) for Python "
            f"{built[0].python_version} {built[0].platform}".rstrip()
        )
    d = result.to_dict()
    click.echo(
        f"bundle {result.output}: {len(result.files)} files ({d['downloaded']} downloaded, "
        f"{d['present']} already present), platforms {', '.join(result.platforms)}; "
        f"apply with: obsplan apply {lock} --bundle {result.output}"
    )


def register(group: click.Group) -> None:
    group.add_command(bundle_cmd)
