"""Apply commands (apply, resume, approve): parse, call one library function, render."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from obsplan.cli.edge import emit_json, guarded, json_option, reporter
from obsplan.cli.shared_options import (
    allow_unverified_option,
    lock_file_option,
    mode_option,
    root_option,
    service_manager_option,
)
from obsplan.cli.sign_command import allowed_signers_option, open_signed

# Each command imports the executor modules it needs when it runs: tests/test_cli_shape.py holds this.

APPLY_EPILOG = (
    "Exit codes: 0 ok (steps pending approval under --auto are not failures), 1 a step failed (rolled back) or "
    "the plan was refused (missing checksum, host off the plan's path, bundle failed verification), 2 bad input "
    "(lock edited or of another format, bundle of another lock), 3 internal error."
)


def _apply_options(f: Any, lock_required: bool = True) -> Any:
    options: list[Any] = [
        click.argument("lock", type=click.Path(dir_okay=False, path_type=Path), required=lock_required),
        root_option(),
        mode_option("safe: serial, 120 s health window; standard: 60 s; fast: parallel within a phase, 20 s."),
        click.option("--dry-run", is_flag=True, help="Print every action; change nothing under --root."),
        click.option("--phase", help="Only steps of this phase."),
        click.option("--component", help="Only steps of this component."),
        service_manager_option,
        click.option("--force", is_flag=True, help="Apply a step even when the host is off the plan's path."),
        click.option(
            "--rehearse",
            is_flag=True,
            help="Rehearse one-way steps (those setting a rollback floor) on a copy of the data before their "
            "switch, as --mode safe does.",
        ),
        click.option(
            "--artifacts",
            "artifacts_dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Take artifacts from this directory (by file name) instead of downloading.",
        ),
        click.option(
            "--bundle",
            type=click.Path(path_type=Path),
            help="Take every artifact from this bundle (directory or .tar from 'obsplan bundle'); its lock "
            "must be byte-identical to LOCK; never opens a network connection.",
        ),
        click.option(
            "--auto",
            is_flag=True,
            help="Unattended: run only steps approved in the lock or with 'obsplan approve'; the others "
            "(and steps requiring them) stay pending approval, which is not a failure (exit 0).",
        ),
        allow_unverified_option(
            "Install artifacts the lock has no sha256 for (refused otherwise); warns per artifact and "
            "is recorded in the history."
        ),
        click.option("--health-timeout", type=float, help="Override the mode's health window (seconds)."),
        click.option(
            "--keep-versions",
            type=int,
            help="Versions/rollback points kept (default: the lock's host_policy.keep_versions, 3).",
        ),
        click.option(
            "--keep-days",
            type=float,
            help="Max age of old versions and backups (default: the lock's host_policy.retention_days, 30).",
        ),
        allowed_signers_option,
        json_option,
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def _do_apply(lock: Path, root: Path, allowed_signers: Path | None, as_json: bool, **options: Any) -> None:
    """Check LOCK's signature when asked, apply it under `root` with `options` (ApplyOptions' fields), exit."""
    import obsplan.executor.apply.engine as engine

    opened = open_signed(lock, allowed_signers)  # read once: the signed bytes are the ones applied
    report = engine.apply(opened, engine.ApplyOptions(root=root, **options), reporter(as_json))
    if not as_json:
        from obsplan.executor.apply.heldback import summary_lines

        for line in summary_lines(report.results):
            click.echo(line)
    pending = [r.step_id for r in report.results if r.status == "pending"]
    if pending and not as_json:
        click.echo(
            f"{len(pending)} step(s) pending approval (not applied, not a failure): {', '.join(pending)}; "
            f"approve with 'obsplan approve STEP_ID --root {root}', then apply --auto again"
        )
    sys.exit(report.exit_code)


@click.command("apply", epilog=APPLY_EPILOG)
@_apply_options
@guarded
def apply_cmd(**kwargs: Any) -> None:
    """Apply a lock on this host (idempotent, automatic rollback).

    Apply the steps of LOCK to this host (idempotent: applying twice does nothing the second time)."""
    _do_apply(**kwargs)


@click.command("resume")
@functools.partial(_apply_options, lock_required=False)
@guarded
def resume_cmd(lock: Path | None, root: Path, **kwargs: Any) -> None:
    """Finish an interrupted apply.

    Resume an interrupted apply: the same as running apply again (both converge).

    Without LOCK, the lock of the last apply under --root is used."""
    from obsplan.executor import queries

    _do_apply(lock=lock or queries.last_applied_lock(root), root=root, **kwargs)


@click.command("approve", epilog="Exit codes: 0 approved, 2 unknown step id or no lock.")
@click.argument("step_id")
@root_option()
@lock_file_option("The lock holding the step (default: the last applied one under --root).")
@click.option("--by", help="Who approves (default: $SUDO_USER, else the current user).")
@json_option
@guarded
def approve_cmd(step_id: str, root: Path, lock_path: Path | None, by: str | None, as_json: bool) -> None:
    """Approve a step on this host for 'apply --auto'.

    Approve STEP_ID on this host so that 'apply --auto' runs it (recorded with who and when)."""
    import obsplan.executor.apply.approvals as approvals

    info = approvals.approve(root, step_id, lock_path, by)
    if as_json:
        emit_json(info)
        return
    again = " (already approved)" if info["already_approved"] else ""
    click.echo(
        f"approved {info['step']}: {info['component']} {info['from_version'] or '-'} -> "
        f"{info['to_version']} (risk {info['risk']}) by {info['approved_by']} at "
        f"{info['approved_at'][:19]}{again}"
    )


def register(group: click.Group) -> None:
    for command in (apply_cmd, resume_cmd, approve_cmd):
        group.add_command(command)
