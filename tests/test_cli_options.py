"""Options once: an option name two commands declare comes from `obsplan/cli/shared_options.py`, one factory
always makes the same option, and the typed option objects the CLI builds refuse what they do not know."""

from __future__ import annotations

import dataclasses
import inspect
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from obsplan.cli import shared_options
from obsplan.cli.main import main
from obsplan.cli.shared_options import SharedOption

HOMONYMS = {
    "--output": "what a command writes: a file, a bundle (directory or tar), a directory (export ansible), or a "
    "facts file or, with --inventory, a folder of them (facts)",
    "--facts": "plan: facts files or folders (repeatable); rollout and status: one folder of a fleet's facts",
    "--limit": "history: how many rows; rollout: which hosts",
    "--max-chars": "diff: at least 1000 (a PR comment); report: 0 is no limit",
}
"""Names that mean different things to different commands: each meaning is still one factory here."""

PER_COMMAND = ("help", "default", "required")
"""What a factory may take from the command (only when its signature has that parameter)."""


def _commands(group: click.Group, ctx: click.Context, path: str = "") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        full = f"{path} {name}".strip()
        if isinstance(command, click.Group):
            out += _commands(command, ctx, full)
        else:
            out.append((full, command))
    return out


def _declarations(root: click.Group) -> dict[str, list[tuple[str, click.Option]]]:
    """Each long option name → (command, option) for every command declaring it."""
    found: dict[str, list[tuple[str, click.Option]]] = defaultdict(list)
    for path, command in _commands(root, click.Context(root)):
        for param in command.params:
            if isinstance(param, click.Option):
                long = [o for o in param.opts if o.startswith("--")]
                found[long[0] if long else param.opts[0]].append((path, param))
    return found


def _definition(option: click.Option) -> dict[str, Any]:
    info = option.to_info_dict()
    return {k: v for k, v in info.items() if k not in PER_COMMAND}


def _factory(option: click.Option) -> Any:
    assert isinstance(option, SharedOption)
    return getattr(shared_options, option.factory)


def problems(root: click.Group) -> list[str]:
    """Every way the commands of `root` restate an option instead of sharing it (empty: none)."""
    out = []
    for name, decls in sorted(_declarations(root).items()):
        if len(decls) < 2:
            continue
        inline = [path for path, opt in decls if not isinstance(opt, SharedOption)]
        if inline:
            out.append(f"{name}: declared by {', '.join(inline)} itself, not by a factory in shared_options")
            continue
        by_factory: dict[str, list[tuple[str, click.Option]]] = defaultdict(list)
        for path, opt in decls:
            by_factory[opt.factory].append((path, opt))  # type: ignore[attr-defined]
        if len(by_factory) > 1 and name not in HOMONYMS:
            out.append(f"{name}: made by {len(by_factory)} factories ({', '.join(sorted(by_factory))}): one, please")
        for factory, same in by_factory.items():
            out += _factory_problems(name, factory, same)
    return out


def _factory_problems(name: str, factory: str, decls: list[tuple[str, click.Option]]) -> list[str]:
    """The declarations of one factory agree on everything it does not take from the command."""
    takes = set(inspect.signature(_factory(decls[0][1])).parameters)
    first_path, first = decls[0]
    out = []
    for path, opt in decls[1:]:
        if _definition(opt) != _definition(first):
            out.append(f"{name} ({factory}): {path} and {first_path} differ in type, name or flags")
        info, first_info = opt.to_info_dict(), first.to_info_dict()
        for key in PER_COMMAND:
            if info[key] != first_info[key] and key not in takes:
                out.append(f"{name} ({factory}): {path} and {first_path} differ in {key}, which it does not take")
    return out


def test_every_shared_option_comes_from_shared_options() -> None:
    assert problems(main) == []


def test_the_check_fails_on_an_option_restated_inline() -> None:
    """The test above can fail: a second command declaring `--root` itself (even identically) is caught, and
    so is a second `--mode` with another type."""

    @click.group()
    def fake() -> None: ...

    @fake.command("one")
    @shared_options.root_option()
    @shared_options.mode_option()
    def one(root: Path, mode: str) -> None: ...

    @fake.command("two")
    @click.option("--root", type=shared_options.DIRECTORY, default=Path("/"), show_default=True)
    @click.option("--mode", type=click.Choice(["safe", "fast"]))
    def two(root: Path, mode: str) -> None: ...

    found = problems(fake)
    assert len(found) == 2 and all("declared by two itself" in p for p in found), found


def test_the_check_fails_when_one_factory_makes_two_different_options() -> None:
    """A factory's declarations must agree on what the factory does not take from the command."""

    @click.group()
    def fake() -> None: ...

    @fake.command("one")
    @shared_options.history_limit_option
    def one(limit: int) -> None: ...

    @fake.command("two")
    @click.option("--limit", cls=SharedOption, factory="history_limit_option", type=click.IntRange(min=1), default=7)
    def two(limit: int) -> None: ...

    assert problems(fake) == ["--limit (history_limit_option): two and one differ in default, which it does not take"]


def test_one_click_type_per_kind_of_path() -> None:
    """--bundle is one type everywhere (a directory or a tar), like every shared option."""
    types = {opt.to_info_dict()["type"]["name"] for _, opt in _declarations(main)["--bundle"]}
    assert len(_declarations(main)["--bundle"]) >= 3 and types == {"path"}
    kinds = {str(opt.type.to_info_dict()) for _, opt in _declarations(main)["--bundle"]}
    assert len(kinds) == 1, kinds


def _typed_objects() -> list[tuple[type, dict[str, Any]]]:
    from obsplan.compiler.config.plan_options import Options
    from obsplan.executor.apply.apply_options import ApplyOptions

    from obsplan.rollout.orchestrator import RolloutOptions

    now = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (ApplyOptions, {}),
        (Options, {"environment": "production", "now": now}),
        (RolloutOptions, {"lock": Path("a.lock"), "inventory": Path("hosts.yaml"), "state_dir": Path("s")}),
    ]


@pytest.mark.parametrize("cls,required", _typed_objects(), ids=lambda x: getattr(x, "__name__", ""))
def test_typed_options_reject_unknown_fields(cls: type, required: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'health_timout'"):
        cls(**required, health_timout=3.0)


@pytest.mark.parametrize("cls,required", _typed_objects(), ids=lambda x: getattr(x, "__name__", ""))
def test_typed_options_are_frozen(cls: type, required: dict[str, Any]) -> None:
    opts = cls(**required)
    field = dataclasses.fields(opts)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(opts, field, getattr(opts, field))
