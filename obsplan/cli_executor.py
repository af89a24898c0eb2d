"""Executor commands (apply, resume, approve, status, history, rollback): parse, call one library function,
render."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from obsplan.cli_edge import emit_json, guarded, json_option
from obsplan.cli_sign import allowed_signers_option, check_signature
from obsplan.errors import EXIT_FAILED, EXIT_OK, ObsplanError

if TYPE_CHECKING:
    from obsplan.executor.report import Reporter

# Each command imports the executor modules it needs when it runs (`status` on an empty root loads no doit,
# httpx or lock models): tests/test_cli_shape.py holds this.

_root = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Prefix for every host path (rehearse into a directory).",
)
_sm = click.option(
    "--service-manager",
    type=click.Choice(["auto", "systemd", "supervisord"]),
    default="auto",
    show_default=True,
    help="auto: systemd when it runs and --root is /, else a supervisord obsplan manages under --root.",
)


def _reporter(as_json: bool) -> Reporter:
    from obsplan.executor.report import ConsoleReporter, JsonLinesReporter

    return JsonLinesReporter(sys.stdout) if as_json else ConsoleReporter(sys.stdout)


def _apply_options(f: Any, lock_required: bool = True) -> Any:
    options: list[Any] = [
        click.argument("lock", type=click.Path(dir_okay=False, path_type=Path), required=lock_required),
        _root,
        click.option(
            "--mode",
            type=click.Choice(["safe", "standard", "fast"]),
            default="standard",
            show_default=True,
            help="safe: serial, 120 s health window; standard: 60 s; fast: parallel within a phase, 20 s.",
        ),
        click.option("--dry-run", is_flag=True, help="Print every action; change nothing under --root."),
        click.option("--phase", help="Only steps of this phase."),
        click.option("--component", help="Only steps of this component."),
        _sm,
        click.option("--force", is_flag=True, help="Apply a step even when the host is off the plan's path."),
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
        click.option(
            "--allow-unverified",
            is_flag=True,
            help="Install artifacts the lock has no sha256 for (refused otherwise); warns per artifact and "
            "is recorded in the history.",
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


def _do_apply(
    lock: Path,
    root: Path,
    mode: str,
    dry_run: bool,
    phase: str | None,
    component: str | None,
    service_manager: str,
    force: bool,
    artifacts_dir: Path | None,
    bundle: Path | None,
    auto: bool,
    allow_unverified: bool,
    health_timeout: float | None,
    keep_versions: int | None,
    keep_days: float | None,
    allowed_signers: Path | None,
    as_json: bool,
) -> None:
    from obsplan.executor import engine

    check_signature(lock, allowed_signers)
    opts = engine.ApplyOptions(
        root=root,
        mode=mode,
        dry_run=dry_run,
        phase=phase,
        component=component,
        service_manager=service_manager,
        force=force,
        artifacts_dir=artifacts_dir,
        health_timeout=health_timeout,
        keep_versions=keep_versions,
        keep_days=keep_days,
        bundle=bundle,
        auto=auto,
        allow_unverified=allow_unverified,
    )
    report = engine.apply(lock, opts, _reporter(as_json))
    pending = [r.step_id for r in report.results if r.status == "pending"]
    if pending and not as_json:
        click.echo(
            f"{len(pending)} step(s) pending approval (not applied, not a failure): {', '.join(pending)}; "
            f"approve with 'obsplan approve STEP_ID --root {root}', then apply --auto again"
        )
    sys.exit(report.exit_code)


def register(group: click.Group) -> None:
    """Attach the executor commands to the main group."""

    @group.command(
        "apply",
        epilog="Exit codes: 0 ok (steps pending approval under --auto are not failures), 1 a step "
        "failed (rolled back) or the plan was refused (missing checksum, host off the plan's path, bundle "
        "failed verification), 2 bad input (lock edited or of another format, bundle of another lock), "
        "3 internal error.",
    )
    @_apply_options
    @guarded
    def apply_cmd(**kwargs: Any) -> None:
        """Apply the steps of LOCK to this host (idempotent: applying twice does nothing the second time)."""
        _do_apply(**kwargs)

    @group.command("resume")
    @functools.partial(_apply_options, lock_required=False)
    @guarded
    def resume_cmd(lock: Path | None, root: Path, **kwargs: Any) -> None:
        """Resume an interrupted apply: the same as running apply again (both converge).

        Without LOCK, the lock of the last apply under --root is used."""
        from obsplan.executor import queries

        _do_apply(lock=lock or queries.last_applied_lock(root), root=root, **kwargs)

    @group.command("approve", epilog="Exit codes: 0 approved, 2 unknown step id or no lock.")
    @click.argument("step_id")
    @_root
    @click.option(
        "--lock",
        "lock_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The lock holding the step (default: the last applied one under --root).",
    )
    @click.option("--by", help="Who approves (default: $SUDO_USER, else the current user).")
    @json_option
    @guarded
    def approve_cmd(step_id: str, root: Path, lock_path: Path | None, by: str | None, as_json: bool) -> None:
        """Approve STEP_ID on this host so that 'apply --auto' runs it (recorded with who and when)."""
        from obsplan.executor import approvals

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

    @group.command("status")
    @_root
    @click.option(
        "--lock",
        "lock_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Compare with this lock (default: the last applied one).",
    )
    @_sm
    @json_option
    @guarded
    def status_cmd(root: Path, lock_path: Path | None, service_manager: str, as_json: bool) -> None:
        """Per component: installed version, target in the lock, health, last result."""
        from obsplan.executor import queries

        rows = queries.status(root, lock_path, service_manager)
        if as_json:
            emit_json(rows)
            return
        cols = ("component", "installed_version", "target_version", "served_version", "health", "last_result")
        click.echo("  ".join(f"{c:<18}" for c in cols).rstrip())
        for r in rows:
            click.echo("  ".join(f"{str(r.get(c) or '-'):<18}" for c in cols).rstrip())
        for r in rows:
            if r.get("drift"):
                click.echo(f"drift: {r['component']}: {r['drift']}")
        pending = [(r["component"], p) for r in rows for p in r.get("pending_approval", [])]
        if pending:
            click.echo(
                f"pending approval ({len(pending)}; 'apply --auto' skips these until 'obsplan approve STEP_ID'):"
            )
            for c, p in pending:
                click.echo(
                    f"  {p['step']:<32} {c} {p['from_version'] or '-'} -> {p['to_version']}  risk {p['risk']}"
                    f"{'  SECURITY' if p['priority'] == 'security' else ''}"
                )

    @group.command("history")
    @click.argument("component", required=False)
    @_root
    @click.option("--limit", type=int, default=50, show_default=True)
    @json_option
    @guarded
    def history_cmd(component: str | None, root: Path, limit: int, as_json: bool) -> None:
        """Upgrade and rollback history, newest first."""
        from obsplan.executor import queries

        rows = queries.history(root, component, limit)
        if as_json:
            emit_json(rows)
            return
        for r in rows:
            ok = "ok" if r["success"] else "FAILED"
            err = f"  {r['error']}" if r["error"] else ""
            if r.get("unverified"):
                err += f"  UNVERIFIED: {r['unverified']}"
            click.echo(
                f"{r['started_at'][:19]}  {r['component']:<16} {r['kind']:<14} "
                f"{r['from_version'] or '-'} -> {r['to_version'] or '-'}  {ok}{err}"
            )

    @group.command("rollback", epilog="Exit codes: 0 rolled back (and serving), 1 a rollback failed, 2 bad input.")
    @click.argument("component", required=False)
    @click.option(
        "--last-run", is_flag=True, help="Put back every component the last apply run changed, each verified serving."
    )
    @click.option("--list", "list_only", is_flag=True, help="List rollback points and installed versions.")
    @click.option("--to", "to", help="A rollback point id, 'adopted' or an installed version (default: newest point).")
    @_root
    @_sm
    @click.option("--mode", type=click.Choice(["safe", "standard", "fast"]), default="standard", show_default=True)
    @click.option("--health-timeout", type=float)
    @json_option
    @guarded
    def rollback_cmd(
        component: str | None,
        last_run: bool,
        list_only: bool,
        to: str | None,
        root: Path,
        service_manager: str,
        mode: str,
        health_timeout: float | None,
        as_json: bool,
    ) -> None:
        """Switch COMPONENT back to a rollback point or an installed version (never below its floor), or with
        --last-run every component the last apply changed."""
        from obsplan.executor import rollback as rollbacks

        if last_run:
            _rollback_last_run(component, to, list_only, root, service_manager, mode, health_timeout, as_json)
            return
        if component is None:
            raise ObsplanError("missing COMPONENT", key="COMPONENT", hint="obsplan rollback COMPONENT, or --last-run")
        if list_only:
            info = rollbacks.rollback_list(root, component)
            if as_json:
                emit_json(info)
                return
            click.echo(f"{component}: current {info['current'] or '-'}, floor {info['floor'] or '-'}")
            for p in info["points"]:
                flag = "  (below floor)" if p["below_floor"] else ""
                click.echo(
                    f"  point {p['id']:<4} {p['from_version'] or '-'} (before {p['to_version']}) "
                    f"{p['status']:<9} {p['created_at'][:19]}{flag}"
                )
            for v in info["versions"]:
                click.echo(f"  version {v['version']}{'  (below floor)' if v['below_floor'] else ''}")
            return
        result = rollbacks.rollback(root, component, to, _reporter(as_json), service_manager, mode, health_timeout)
        if as_json:
            from obsplan.executor.engine import emit_result_event
            from obsplan.executor.report import JsonLinesReporter

            emit_result_event(JsonLinesReporter(sys.stdout), result)
        sys.exit(EXIT_OK if result.status == "ok" else EXIT_FAILED)


def _rollback_last_run(
    component: str | None,
    to: str | None,
    list_only: bool,
    root: Path,
    service_manager: str,
    mode: str,
    health_timeout: float | None,
    as_json: bool,
) -> None:
    from obsplan.executor.lastrun import rollback_last_run

    if component is not None or to is not None or list_only:
        raise ObsplanError(
            "--last-run takes no COMPONENT, --to or --list",
            key="--last-run",
            hint="obsplan rollback --last-run [--root R] [--json]",
        )
    run_id, results = rollback_last_run(
        root, _reporter(as_json), service_manager=service_manager, mode=mode, health_timeout=health_timeout
    )
    if as_json:  # the last JSON line sums up the run (the events before it are one JSON object per line)
        from obsplan.executor.report import Event, JsonLinesReporter

        JsonLinesReporter(sys.stdout).emit(
            Event(None, "last_run_rollback", {"run_id": run_id, "results": [r.to_dict() for r in results]})
        )
    else:
        click.echo(f"last apply run: {run_id or 'none'}; {len(results)} component(s) changed")
        for r in results:
            click.echo(f"  {r.component:<18} {r.status:<11} {r.reason}")
    sys.exit(EXIT_FAILED if any(r.failed for r in results) else EXIT_OK)
