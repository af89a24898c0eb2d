"""The command-line edge shared by every command module: error → exit code, `--json`, output helpers.

Command modules import from here (never from `obsplan.cli.main`), so importing any of them alone works.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from obsplan.cli.shared_options import json_option as json_option  # re-exported for callers of the edge
from obsplan.kernel.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ObsplanError

if TYPE_CHECKING:
    from obsplan.executor.reporters import Reporter

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 check/step failed, 2 bad input, 3 internal error, 130 interrupted."


def reporter(as_json: bool) -> Reporter:
    """Where an executor command reports its events: one JSON object a line (--json), or the console."""
    from obsplan.executor.reporters import ConsoleReporter, JsonLinesReporter

    return JsonLinesReporter(sys.stdout) if as_json else ConsoleReporter(sys.stdout)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def json_requested(kwargs: dict[str, Any]) -> bool:
    """Whether the running command was given --json (its `as_json` parameter)."""
    if "as_json" in kwargs:
        return bool(kwargs["as_json"])
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("as_json"))


def error_object(
    message: str, exit_code: int, file: str | None = None, key: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    """The one JSON shape every error takes under --json."""
    return {"error": message, "file": file, "key": key, "hint": hint, "exit_code": exit_code}


def fail(message: str, exit_code: int, as_json: bool, hint: str | None = None, **extra: Any) -> None:
    """End the command with an error: one line, or one JSON object, on stderr."""
    if as_json:
        _echo_json_error({**error_object(message, exit_code, hint=hint), **extra})
    else:
        click.echo(f"error: {message}" + (f" (hint: {hint})" if hint else ""), err=True)
    sys.exit(exit_code)


def guarded(f: F) -> F:
    """Turn ObsplanError into one line on stderr + its exit code; save a traceback for anything else.

    With --json, every error is one JSON object on stderr instead (`error_object`)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = json_requested(kwargs)
        try:
            return f(*args, **kwargs)
        except ObsplanError as exc:
            if as_json:
                _echo_json_error(error_object(exc.message, exc.exit_code, exc.file, exc.key, exc.hint))
            else:
                click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # `obsplan plan | head`: the reader went away after the files were written; stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except KeyboardInterrupt:
            if as_json:
                _echo_json_error(error_object("interrupted", EXIT_INTERRUPTED))
            else:
                click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Exit:
            raise
        except Exception:  # noqa: BLE001 - the edge of the program: report, do not crash with a traceback
            with tempfile.NamedTemporaryFile("w", prefix="obsplan-crash-", suffix=".txt", delete=False) as fh:
                traceback.print_exc(file=fh)
            message = f"internal error: {sys.exc_info()[1]!r}"
            if as_json:
                hint = "a bug in obsplan: report it with the saved traceback"
                _echo_json_error(error_object(message, EXIT_INTERNAL, fh.name, None, hint))
            else:
                click.echo(f"{message} (traceback saved to {fh.name})", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def _echo_json_error(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, sort_keys=True), err=True)


class JsonErrorsMixin(click.Group):
    """For the top-level group: with --json anywhere on the command line, a usage error (unknown option, missing
    argument) is one JSON object on stderr too, like the errors `guarded` reports."""

    def main(self, args: Any = None, *a: Any, **kw: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv or kw.get("standalone_mode") is False:
            return super().main(argv, *a, **kw)
        kw["standalone_mode"] = False
        try:
            rv = super().main(argv, *a, **kw)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f"see '{ctx.command_path} --help'" if ctx is not None else None
            _echo_json_error(error_object(exc.format_message(), exc.exit_code, None, _usage_key(exc), hint))
            sys.exit(exc.exit_code)
        except click.Abort:
            _echo_json_error(error_object("interrupted", EXIT_INTERRUPTED))
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(rv if isinstance(rv, int) else 0)


def _usage_key(exc: click.ClickException) -> str | None:
    param = getattr(exc, "param", None)
    if param is not None:
        return param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
    return getattr(exc, "option_name", None)
