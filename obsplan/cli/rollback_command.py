"""`obsplan rollback`: one component back to a rollback point or an installed version, or every component the
last apply run changed (`--last-run`); each verified serving."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from obsplan.cli.edge import emit_json, guarded, reporter
from obsplan.cli.shared_options import (
    force_option,
    health_timeout_option,
    json_option,
    mode_option,
    root_option,
    service_manager_option,
)
from obsplan.kernel.errors import EXIT_FAILED, EXIT_OK, ObsplanError


@click.command("rollback", epilog="Exit codes: 0 rolled back (and serving), 1 a rollback failed, 2 bad input.")
@click.argument("component", required=False)
@click.option(
    "--last-run", is_flag=True, help="Put back every component the last apply run changed, each verified serving."
)
@click.option("--list", "list_only", is_flag=True, help="List rollback points and installed versions.")
@click.option("--to", "to", help="A rollback point id, 'adopted' or an installed version (default: newest point).")
@root_option()
@service_manager_option()
@mode_option()
@health_timeout_option()
@force_option("Roll back even when that version's own checker refuses the configuration.")
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
    force: bool,
    as_json: bool,
) -> None:
    """Go back to a rollback point, or undo the last run.

    Switch COMPONENT back to a rollback point or an installed version (never below its floor), or with
    --last-run every component the last apply changed."""
    import obsplan.executor.recovery.rollback as rollbacks

    if last_run:
        if component is not None or to is not None or list_only:
            raise ObsplanError(
                "--last-run takes no COMPONENT, --to or --list",
                key="--last-run",
                hint="obsplan rollback --last-run [--root R] [--json]",
            )
        _rollback_last_run(root, as_json, service_manager, mode, health_timeout)
        return
    if component is None:
        raise ObsplanError("missing COMPONENT", key="COMPONENT", hint="obsplan rollback COMPONENT, or --last-run")
    if list_only:
        _render_points(rollbacks.rollback_list(root, component), component, as_json)
        return
    result = rollbacks.rollback(
        root, component, to, reporter(as_json), service_manager, mode, health_timeout, force=force
    )
    if as_json:
        from obsplan.executor.apply.engine import emit_result_event
        from obsplan.executor.reporters import JsonLinesReporter

        emit_result_event(JsonLinesReporter(sys.stdout), result)
    sys.exit(EXIT_OK if result.status == "ok" else EXIT_FAILED)


def _render_points(info: dict[str, Any], component: str, as_json: bool) -> None:
    """`rollback COMPONENT --list`: the rollback points and installed versions, marked below the floor."""
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


def _rollback_last_run(
    root: Path, as_json: bool, service_manager: str, mode: str, health_timeout: float | None
) -> None:
    """`rollback --last-run`: every component the last apply run changed."""
    from obsplan.executor.recovery.lastrun import rollback_last_run

    run_id, results = rollback_last_run(
        root, reporter(as_json), service_manager=service_manager, mode=mode, health_timeout=health_timeout
    )
    if as_json:  # the last JSON line sums up the run (the events before it are one JSON object per line)
        from obsplan.executor.reporters import Event, JsonLinesReporter

        JsonLinesReporter(sys.stdout).emit(
            Event(None, "last_run_rollback", {"run_id": run_id, "results": [r.to_dict() for r in results]})
        )
    else:
        click.echo(f"last apply run: {run_id or 'none'}; {len(results)} component(s) changed")
        for r in results:
            click.echo(f"  {r.component:<18} {r.status:<11} {r.reason}")
    sys.exit(EXIT_FAILED if any(r.failed for r in results) else EXIT_OK)


def register(group: click.Group) -> None:
    group.add_command(rollback_cmd)
