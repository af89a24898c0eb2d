"""Command-line edge: parse, call one library function, render, map to an exit code.

Exit codes: 0 ok · 1 a check or step failed · 2 bad input (config, lock, flags) · 3 internal error
(traceback saved to a file) · 130 interrupted.
"""

from __future__ import annotations

import click

from obsplan import __version__
from obsplan.cli.edge import EXIT_CODES_HELP, JsonErrorsMixin, emit_json, guarded
from obsplan.cli.lazy_group import LazyCommand, LazyGroup
from obsplan.cli.shared_options import json_option

__all__ = ["main", "emit_json", "guarded", "json_option"]


COMMANDS = (
    LazyCommand("plan", "obsplan.cli.plan_commands", "Resolve versions and write the lock and its upgrade plan."),
    LazyCommand("check-upgrades", "obsplan.cli.plan_commands", "Show available upgrades without writing files."),
    LazyCommand("list-versions", "obsplan.cli.plan_commands", "Known release versions of a component, newest first."),
    LazyCommand("diff", "obsplan.cli.plan_commands", "What changed between two locks (files or REV:PATH)."),
    LazyCommand("snapshot", "obsplan.cli.plan_commands", "The release snapshot used when GitHub cannot be reached."),
    LazyCommand("apply", "obsplan.cli.apply_commands", "Apply a lock on this host (idempotent, automatic rollback)."),
    LazyCommand("resume", "obsplan.cli.apply_commands", "Finish an interrupted apply."),
    LazyCommand("approve", "obsplan.cli.apply_commands", "Approve a step on this host for 'apply --auto'."),
    LazyCommand("status", "obsplan.cli.query_commands", "Installed, target and served version per component."),
    LazyCommand("history", "obsplan.cli.query_commands", "Upgrade and rollback history, newest first."),
    LazyCommand("rollback", "obsplan.cli.rollback_command", "Go back to a rollback point, or undo the last run."),
    LazyCommand("adopt", "obsplan.cli.adopt_command", "Accept a binary replaced by hand as installed."),
    LazyCommand("bundle", "obsplan.cli.bundle_command", "Build, verify or extract an air-gapped bundle of a lock."),
    LazyCommand("facts", "obsplan.cli.facts_command", "This host's installed, linked and served versions, as JSON."),
    LazyCommand("sign", "obsplan.cli.sign_command", "Sign a lock with an SSH key (ssh-keygen -Y sign)."),
    LazyCommand("doctor", "obsplan.cli.doctor_command", "Check state, links and units against each other (--repair)."),
    LazyCommand("report", "obsplan.cli.report_command", "Render the Markdown report of a lock (decisions first)."),
    LazyCommand("rollout", "obsplan.cli.rollout_commands", "Roll a lock out to a fleet: canary, batches, gates."),
    LazyCommand("export", "obsplan.cli.rollout_commands", "Export the rollout for other tools (Ansible)."),
)


class MainGroup(JsonErrorsMixin, LazyGroup):
    """Lazy commands; usage errors as one JSON object on stderr when --json is given."""


@click.group(cls=MainGroup, lazy=COMMANDS, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="obsplan")
def main() -> None:
    """Compile reviewed upgrade plans for an observability stack, and apply them safely."""
