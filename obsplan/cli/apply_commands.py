"""Apply commands (apply, resume, approve): parse, call one library function, render."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from obsplan.cli.edge import emit_json, guarded, reporter
from obsplan.cli.shared_options import LOCK_FILE, apply_options, json_option, lock_file_option, root_option
from obsplan.cli.sign_command import open_signed

if TYPE_CHECKING:
    from obsplan.executor.apply.apply_options import ApplyOptions

# Each command imports the executor modules it needs when it runs: tests/test_cli_shape.py holds this.

APPLY_EPILOG = (
    "Exit codes: 0 ok (steps pending approval under --auto are not failures), 1 a step failed (rolled back) or "
    "the plan was refused (missing checksum, host off the plan's path, bundle failed verification), 2 bad input "
    "(lock edited or of another format, bundle of another lock), 3 internal error."
)


def _as_apply_options(command: Callable[..., None]) -> Callable[..., None]:
    """The command receives its click parameters as one `ApplyOptions`, built with explicit keywords (the
    executor's module imported when the command runs)."""

    @functools.wraps(command)
    def build(
        *,
        root: Path,
        mode: str,
        dry_run: bool,
        phase: str | None,
        component: str | None,
        service_manager: str,
        force: bool,
        rehearse: bool,
        artifacts_dir: Path | None,
        bundle: Path | None,
        auto: bool,
        allow_unverified: bool,
        health_timeout: float | None,
        keep_versions: int | None,
        keep_days: float | None,
        **rest: Any,
    ) -> None:
        from obsplan.executor.apply.apply_options import ApplyOptions

        options = ApplyOptions(
            root=root,
            mode=mode,
            dry_run=dry_run,
            phase=phase,
            component=component,
            service_manager=service_manager,
            force=force,
            rehearse=rehearse,
            artifacts_dir=artifacts_dir,
            health_timeout=health_timeout,
            keep_versions=keep_versions,
            keep_days=keep_days,
            bundle=bundle,
            auto=auto,
            allow_unverified=allow_unverified,
        )
        command(options=options, **rest)

    return build


def _do_apply(lock: Path, options: ApplyOptions, allowed_signers: Path | None, as_json: bool) -> None:
    """Check LOCK's signature when asked, apply it as `options` say, exit."""
    import obsplan.executor.apply.engine as engine

    opened = open_signed(lock, allowed_signers)  # read once: the signed bytes are the ones applied
    report = engine.apply(opened, options, reporter(as_json))
    if not as_json:
        from obsplan.executor.apply.heldback import summary_lines

        for line in summary_lines(report.results):
            click.echo(line)
    pending = [r.step_id for r in report.results if r.status == "pending"]
    if pending and not as_json:
        click.echo(
            f"{len(pending)} step(s) pending approval (not applied, not a failure): {', '.join(pending)}; "
            f"approve with 'obsplan approve STEP_ID --root {options.root}', then apply --auto again"
        )
    sys.exit(report.exit_code)


@click.command("apply", epilog=APPLY_EPILOG)
@click.argument("lock", type=LOCK_FILE)
@apply_options
@guarded
@_as_apply_options
def apply_cmd(lock: Path, options: ApplyOptions, allowed_signers: Path | None, as_json: bool) -> None:
    """Apply a lock on this host (idempotent, automatic rollback).

    Apply the steps of LOCK to this host (idempotent: applying twice does nothing the second time)."""
    _do_apply(lock, options, allowed_signers, as_json)


@click.command("resume")
@click.argument("lock", type=LOCK_FILE, required=False)
@apply_options
@guarded
@_as_apply_options
def resume_cmd(lock: Path | None, options: ApplyOptions, allowed_signers: Path | None, as_json: bool) -> None:
    """Finish an interrupted apply.

    Resume an interrupted apply: the same as running apply again (both converge).

    Without LOCK, the lock of the last apply under --root is used."""
    from obsplan.executor import queries

    _do_apply(lock or queries.last_applied_lock(options.root), options, allowed_signers, as_json)


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
