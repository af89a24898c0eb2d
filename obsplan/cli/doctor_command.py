"""`obsplan doctor`: check (and with --repair, rebuild) the executor's state against the host."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from obsplan.cli.edge import emit_json, guarded
from obsplan.cli.shared_options import json_option, root_option, service_manager_option, state_dir_option
from obsplan.kernel.errors import EXIT_FAILED, EXIT_OK


def register(group: click.Group) -> None:
    """Attach `doctor` to the main group."""

    @group.command("doctor")
    @root_option("Prefix for every host path.")
    @click.option(
        "--repair",
        is_flag=True,
        help="Move a broken state.db aside (kept, never deleted) and rebuild the installed versions "
        "from the host's current links.",
    )
    @service_manager_option("Where units are looked for.")
    @state_dir_option(
        "Check the rollout journal (rollouts.db) in this directory, on the controller, instead of a host."
    )
    @json_option
    @guarded
    def doctor_cmd(root: Path, repair: bool, service_manager: str, state_dir: Path | None, as_json: bool) -> None:
        """Check state, links and units against each other (--repair).

        Check state.db, current links, version directories, /usr/local/bin links and units against each other.

        With --state-dir, check the rollout journal instead (--repair moves a broken one aside).
        Exit 0 when everything agrees (or was repaired), 1 when a problem remains.
        """
        if state_dir is not None:
            _journal(state_dir, repair, as_json)
            return
        from obsplan.executor import doctor
        from obsplan.executor.apply.hostlock import apply_lock
        from obsplan.executor.host.layout import Layout
        from obsplan.executor.services.managers import make_service_manager

        layout = Layout(root.resolve())
        services = make_service_manager(service_manager, layout)
        if repair:
            with apply_lock(layout, "doctor --repair"):
                report = doctor.check(layout, services, repair=True)
        else:
            report = doctor.check(layout, services)
        if as_json:
            emit_json(report.to_dict())
        else:
            for f in report.findings:
                fixed = f"  REPAIRED: {f.repaired}" if f.repaired else ""
                click.echo(f"{f.check:<13} {f.component or '-':<18} {f.problem}{fixed}")
            left = [f for f in report.findings if not f.repaired]
            click.echo("healthy" if not report.findings else f"{len(left)} problem(s) left")
            if left and not repair and any(f.check in ("database", "state") for f in left):
                click.echo(f"repair with: obsplan doctor --root {root} --repair")
        sys.exit(EXIT_OK if report.healthy else EXIT_FAILED)


def _journal(state_dir: Path, repair: bool, as_json: bool) -> None:
    from obsplan.rollout.journal.rollouts_db_check import check_journal, journal_path

    wrong, moved = check_journal(state_dir, repair)
    if as_json:
        finding = {"check": "database", "component": None, "problem": f"{journal_path(state_dir)} {wrong}"}
        findings = [{**finding, "repaired": f"moved aside to {moved}" if moved else None}] if wrong else []
        emit_json(
            {
                "state_dir": str(state_dir),
                "healthy": wrong is None or moved is not None,
                "moved_aside": moved,
                "findings": findings,
            }
        )
    elif wrong is None:
        click.echo("healthy")
    else:
        fixed = f"  REPAIRED: moved aside to {moved}" if moved else ""
        click.echo(f"{'database':<13} {'-':<18} {journal_path(state_dir)} {wrong}{fixed}")
        click.echo("1 problem(s) left" if not moved else "repaired")
        if not moved:
            click.echo(f"repair with: obsplan doctor --state-dir {state_dir} --repair")
    sys.exit(EXIT_OK if wrong is None or moved else EXIT_FAILED)
