"""`obsplan adopt COMPONENT`: accept a binary replaced by hand as obsplan's install of its version."""

from __future__ import annotations

from pathlib import Path

import click

from obsplan.cli.edge import emit_json, guarded, reporter
from obsplan.cli.shared_options import json_option, root_option, service_manager_option


@click.command(
    "adopt", epilog="Exit codes: 0 adopted, 1 nothing hand-placed to adopt, 2 bad input (no applied lock knows it)."
)
@click.argument("component")
@root_option()
@service_manager_option()
@json_option
@guarded
def adopt_cmd(component: str, root: Path, service_manager: str, as_json: bool) -> None:
    """Accept a binary replaced by hand as installed.

    Accept COMPONENT's hand-placed binary (drift) as installed: kept under /opt/obsplan/COMPONENT/VERSION/,
    a rollback point to obsplan's previous version kept, no restart. `status` then shows no drift."""
    from obsplan.executor.host.adopt_change import adopt_component

    done = adopt_component(root, component, reporter(as_json), service_manager)
    if as_json:
        emit_json(done)
        return
    click.echo(
        f"{component} {done['version']} adopted (was {done['previous'] or '-'}; "
        f"'obsplan rollback {component}' goes back to it, point {done['point']})"
    )


def register(group: click.Group) -> None:
    group.add_command(adopt_cmd)
