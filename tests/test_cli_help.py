"""One help text per command: the line `obsplan --help` shows for a command (from the lazy table, which imports
no command module) is the first paragraph of the command's own `obsplan COMMAND --help`."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from obsplan.cli.lazy_group import LazyCommand
from obsplan.cli.main import COMMANDS, main


def main_help_rows() -> dict[str, str]:
    """The Commands section of `obsplan --help`, each row's wrapped text joined into one line."""
    out = CliRunner().invoke(main, ["--help"]).output
    section = out[out.index("Commands:\n") + len("Commands:\n") :].split("\n\n")[0]
    rows: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        match = re.match(r"^  (\S+)\s+(.*)$", line)
        if match:
            name, text = match.groups()
            rows[name] = text
        else:
            rows[name] += " " + line.strip()
    return rows


def own_first_paragraph(name: str) -> str:
    out = CliRunner().invoke(main, [name, "--help"]).output
    body = out.split("\n\n", 1)[1]  # after the Usage line
    return " ".join(body.split("\n\n")[0].split())


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda e: e.name)
def test_the_command_list_and_the_command_say_the_same(entry: LazyCommand) -> None:
    rows = main_help_rows()
    assert rows[entry.name] == entry.short_help
    assert own_first_paragraph(entry.name) == entry.short_help


def test_every_command_is_listed() -> None:
    assert set(main_help_rows()) == {e.name for e in COMMANDS}
