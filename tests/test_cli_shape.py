"""The CLI's shape: a lazy command table that matches the modules, no import circle, a light --version."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import click.testing
import pytest

from obsplan.cli.main import COMMANDS, main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEAVY = ("obsplan.compiler", "obsplan.executor", "httpx", "doit", "networkx", "pydantic", "jinja2", "rich")


def test_table_matches_what_each_module_registers() -> None:
    modules = {c.module for c in COMMANDS}
    registered: dict[str, set[str]] = {}
    for module in modules:
        group = click.Group()
        __import__(module, fromlist=["register"]).register(group)
        registered[module] = set(group.commands)
    assert registered == {m: {c.name for c in COMMANDS if c.module == m} for m in modules}


def test_help_lists_every_command_with_its_table_help() -> None:
    text = click.testing.CliRunner().invoke(main, ["--help"]).output
    for c in COMMANDS:
        assert c.name in text and c.short_help in text


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import sys\nfrom obsplan.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_every_cli_module_imports_alone_in_a_fresh_interpreter() -> None:
    """No import circle through the edge: each command module loads by itself."""
    import obsplan.cli

    names = sorted(m.name for m in pkgutil.iter_modules(obsplan.cli.__path__, "obsplan.cli."))
    assert {c.module for c in COMMANDS} <= set(names)
    failed = {}
    for module in names:
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
        if proc.returncode:
            failed[module] = proc.stderr.strip().splitlines()[-1]
    assert not failed, failed


def test_offline_plan_imports_no_network_library(tmp_path: Path) -> None:
    """`plan --offline` loads what it cannot avoid; no httpx (nor the executor's doit) is imported."""
    lock = tmp_path / "x.lock"
    code = (
        "import sys\nfrom obsplan.cli.main import main\n"
        f"try:\n    main(['plan', '--config-dir', {str(EXAMPLES)!r}, '--env', 'staging', '--offline', '-o', {str(lock)!r}])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore', 'doit', 'rich')))"
    )
    env = {**os.environ, "OBSPLAN_CACHE_DIR": str(tmp_path / "cache"), "OBSPLAN_NOW": "2026-11-22"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == "[]" and lock.is_file()


def test_status_on_an_empty_root_imports_no_heavy_library(tmp_path: Path) -> None:
    """`status` on an empty root (no state.db, no applied lock) reads the layout only: no doit, httpx, networkx,
    jinja2, nor the lock models."""
    code = (
        "import sys\nfrom obsplan.cli.main import main\n"
        f"try:\n    main(['status', '--root', {str(tmp_path / 'root')!r}])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = ('doit', 'httpx', 'httpcore', 'networkx', 'jinja2', 'pydantic', 'rich')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m == 'obsplan.lock.lockfile'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[0].split() == [
        "component",
        "installed_version",
        "linked_version",
        "target_version",
        "served_version",
        "health",
        "last_result",
    ]
    assert lines[-1] == "[]"
