"""Command-line edge: parse, call one library function, render, map to an exit code.

Exit codes: 0 ok · 1 a check or step failed · 2 bad input (config, lock, flags) · 3 internal error
(traceback saved to a file) · 130 interrupted.
"""

from __future__ import annotations

import click

from obsplan import __version__
from obsplan.cli_edge import EXIT_CODES_HELP, JsonErrorsMixin, emit_json, guarded, json_option
from obsplan.cli_lazy import LazyCommand, LazyGroup

__all__ = ["main", "emit_json", "guarded", "json_option"]


COMMANDS = (
    LazyCommand("plan", "obsplan.cli_compile", "Resolve versions and write the lock and its upgrade plan."),
    LazyCommand("check-upgrades", "obsplan.cli_compile", "Show available upgrades without writing files."),
    LazyCommand("list-versions", "obsplan.cli_compile", "List the known release versions of a component."),
    LazyCommand("diff", "obsplan.cli_compile", "What changed between two locks (files or REV:PATH)."),
    LazyCommand("snapshot", "obsplan.cli_compile", "The embedded release snapshot (refresh)."),
    LazyCommand("apply", "obsplan.cli_executor", "Apply a lock on this host (idempotent, automatic rollback)."),
    LazyCommand("resume", "obsplan.cli_executor", "Finish an interrupted apply."),
    LazyCommand("approve", "obsplan.cli_executor", "Approve a step on this host for 'apply --auto'."),
    LazyCommand("status", "obsplan.cli_queries", "Installed, target and served version per component."),
    LazyCommand("history", "obsplan.cli_queries", "What obsplan did on this host."),
    LazyCommand("rollback", "obsplan.cli_rollback", "Go back to a rollback point."),
    LazyCommand("adopt", "obsplan.cli_adopt", "Accept a binary replaced by hand as installed."),
    LazyCommand("bundle", "obsplan.cli_bundle", "Build, verify or extract an air-gapped bundle of a lock."),
    LazyCommand("facts", "obsplan.cli_facts", "This host's installed, linked and served versions, as JSON."),
    LazyCommand("sign", "obsplan.cli_sign", "Sign a lock with an SSH key (ssh-keygen -Y sign)."),
    LazyCommand("doctor", "obsplan.cli_doctor", "Check state, links and units against each other (--repair)."),
    LazyCommand("report", "obsplan.cli_review", "Render the Markdown report of a lock (decisions first)."),
    LazyCommand("rollout", "obsplan.cli_rollout", "Roll a lock out to a fleet: canary, batches, Prometheus gates."),
    LazyCommand("export", "obsplan.cli_rollout", "Export the rollout for other tools (Ansible)."),
)


class MainGroup(JsonErrorsMixin, LazyGroup):
    """Lazy commands; usage errors as one JSON object on stderr when --json is given."""


@click.group(cls=MainGroup, lazy=COMMANDS, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="obsplan")
def main() -> None:
    """Compile reviewed upgrade plans for an observability stack, and apply them safely."""
