"""A click group that imports a command's module only when that command runs.

`obsplan --version` and `obsplan --help` import no compiler, executor or network library: the group knows each
command's name, module and one-line help from a table, and asks the module to `register` its commands into a
scratch group only when one of them is resolved.
"""

from __future__ import annotations

import gc
import importlib
import sys
from dataclasses import dataclass
from types import ModuleType

import click


@dataclass(frozen=True)
class LazyCommand:
    name: str
    module: str  # a module with `register(group)` that defines this command
    short_help: str


class LazyGroup(click.Group):
    def __init__(self, *args: object, lazy: tuple[LazyCommand, ...] = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = {c.name: c for c in lazy}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        return load_command(self.lazy[cmd_name])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name].short_help) for name in sorted(self.lazy)]
        rows += [(n, c.get_short_help_str()) for n, c in sorted(self.commands.items()) if n not in self.lazy]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def load_command(entry: LazyCommand) -> click.Command:
    """Import the entry's module and return the command it registers under the entry's name."""
    scratch = click.Group()
    register = _import_quietly(entry.module).register
    register(scratch)
    command = scratch.commands.get(entry.name)
    if command is None:
        raise RuntimeError(f"{entry.module}.register defines no command {entry.name!r}")
    return command


def _import_quietly(name: str) -> ModuleType:
    """Import a command's module with the cyclic garbage collector paused, then freeze what was loaded.

    Importing a command loads thousands of classes and functions that live until the process ends; each full
    collection meanwhile walks all of them again (`plan --offline` made two full passes of tens of milliseconds
    each). Frozen objects are never scanned again, so the command's own collections stay small."""
    if name in sys.modules:  # loaded before (a second command in the same process): nothing to pause for
        return sys.modules[name]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        module = importlib.import_module(name)
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    return module
