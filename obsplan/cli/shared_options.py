"""Options several commands share, defined once: each factory takes the help text that fits its command.

Every command module imports these (never redefines `--root`, `--lock` or `-o/--output` itself), so the
type, default and flag spelling of an option cannot drift between commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]


def root_option(help: str = "Prefix for every host path (rehearse into a directory).") -> Decorator:
    """`--root DIR`: the host's filesystem root (default `/`)."""
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/"),
        show_default=True,
        help=help,
    )


def lock_file_option(help: str) -> Decorator:
    """`--lock FILE` into the `lock_path` parameter (optional; the command says what its absence means)."""
    return click.option("--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path), help=help)


def output_file_option(help: str, required: bool = False) -> Decorator:
    """`-o/--output FILE` into the `output` parameter."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path, dir_okay=False),
        required=required,
        help=help,
    )


def allow_unverified_option(help: str) -> Decorator:
    """`--allow-unverified`: accept artifacts the lock has no sha256 for (each command says what it then does)."""
    return click.option("--allow-unverified", is_flag=True, help=help)


def service_manager_option(f: Any) -> Any:
    """`--service-manager auto|systemd|supervisord`."""
    return click.option(
        "--service-manager",
        type=click.Choice(["auto", "systemd", "supervisord"]),
        default="auto",
        show_default=True,
        help="auto: systemd when it runs and --root is /, else a supervisord obsplan manages under --root.",
    )(f)


def mode_option(help: str | None = None) -> Decorator:
    """`--mode safe|standard|fast` (default safe, seed 003's "Safe Mode (default)"): the health window and
    parallelism of a step."""
    return click.option(
        "--mode", type=click.Choice(["safe", "standard", "fast"]), default="safe", show_default=True, help=help
    )
