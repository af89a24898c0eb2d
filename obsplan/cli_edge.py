"""The command-line edge shared by every command module: error → exit code, `--json`, output helpers.

Command modules import from here (never from `obsplan.cli`), so importing any of them alone works.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from obsplan.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ObsplanError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 check/step failed, 2 bad input, 3 internal error, 130 interrupted."


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(f)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def guarded(f: F) -> F:
    """Turn ObsplanError into one line on stderr + its exit code; save a traceback for anything else."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ObsplanError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # `obsplan plan | head`: the reader went away after the files were written; stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Exit:
            raise
        except Exception:  # noqa: BLE001 - the edge of the program: report, do not crash with a traceback
            with tempfile.NamedTemporaryFile("w", prefix="obsplan-crash-", suffix=".txt", delete=False) as fh:
                traceback.print_exc(file=fh)
            click.echo(f"internal error: {sys.exc_info()[1]!r} (traceback saved to {fh.name})", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]
