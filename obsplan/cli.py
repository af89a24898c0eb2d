"""Command-line edge: parse, call one library function, render, map to an exit code.

Exit codes: 0 ok · 1 a check or step failed · 2 bad input (config, lock, flags) · 3 internal error
(traceback saved to a file) · 130 interrupted.
"""

from __future__ import annotations

import click

from obsplan import __version__
from obsplan.cli_edge import EXIT_CODES_HELP, emit_json, guarded, json_option

__all__ = ["main", "emit_json", "guarded", "json_option"]


@click.group(epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="obsplan")
def main() -> None:
    """Compile reviewed upgrade plans for an observability stack, and apply them safely."""


def _register() -> None:
    from obsplan import cli_compile

    cli_compile.register(main)
    from obsplan import cli_executor

    cli_executor.register(main)
    from obsplan import cli_bundle

    cli_bundle.register(main)
    from obsplan import cli_facts

    cli_facts.register(main)


_register()
