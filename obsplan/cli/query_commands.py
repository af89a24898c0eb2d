"""Read-only host commands (status, history): what is installed, served and pending, and what obsplan did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from obsplan.cli.edge import emit_json, guarded
from obsplan.cli.shared_options import (
    facts_dir_option,
    history_limit_option,
    json_option,
    lock_file_option,
    root_option,
    service_manager_option,
)

# `status` on an empty root loads no doit, httpx or lock models: tests/test_cli_shape.py holds this.


@click.command("status")
@root_option()
@lock_file_option("Compare with this lock (default: the last applied one).")
@service_manager_option()
@facts_dir_option(
    "The fleet instead: facts collected by `obsplan facts --inventory I -o DIR`, one table host × component."
)
@json_option
@guarded
def status_cmd(root: Path, lock_path: Path | None, service_manager: str, facts_dir: Path | None, as_json: bool) -> None:
    """Installed, target and served version per component.

    Per component of the lock and every component obsplan manages: installed (state), linked (`current`),
    target and served version, health, last result (with --facts DIR: per host and component of a fleet, served
    version, target and drift)."""
    from obsplan.executor import queries

    if facts_dir is not None:
        _fleet_status(facts_dir, lock_path, as_json)
        return

    rows = queries.status(root, lock_path, service_manager)
    if as_json:
        emit_json(rows)
        return
    _render_status(rows)


def _fleet_status(facts_dir: Path, lock_path: Path | None, as_json: bool) -> None:
    from obsplan.lock.lockfile import load_lock
    from obsplan.rollout.fleet_facts import rows, table

    data = rows(facts_dir, load_lock(lock_path) if lock_path is not None else None)
    if as_json:
        emit_json(data)
    else:
        click.echo(table(data), nl=False)


def _render_status(rows: list[dict[str, Any]]) -> None:
    cols = (
        "component",
        "installed_version",
        "host_version",
        "target_version",
        "served_version",
        "health",
        "last_result",
    )
    heads = {"host_version": "linked_version"}  # the `current` link under /opt/obsplan
    click.echo("  ".join(f"{heads.get(c, c):<18}" for c in cols).rstrip())
    for r in rows:
        click.echo("  ".join(f"{str(r.get(c) or '-'):<18}" for c in cols).rstrip())
    for r in rows:
        if r.get("drift"):
            click.echo(f"drift: {r['component']}: {r['drift']}")
    pending = [(r["component"], p) for r in rows for p in r.get("pending_approval", [])]
    if pending:
        click.echo(f"pending approval ({len(pending)}; 'apply --auto' skips these until 'obsplan approve STEP_ID'):")
        for c, p in pending:
            click.echo(
                f"  {p['step']:<32} {c} {p['from_version'] or '-'} -> {p['to_version']}  risk {p['risk']}"
                f"{'  SECURITY' if p['priority'] == 'security' else ''}"
            )


@click.command("history")
@click.argument("component", required=False)
@root_option()
@history_limit_option
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


def register(group: click.Group) -> None:
    group.add_command(status_cmd)
    group.add_command(history_cmd)
