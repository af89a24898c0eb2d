"""Options more than one command declares, defined once: one factory per option (flag spelling, parameter name,
type, default), and one click type per kind of argument (`LOCK_FILE`, `DIRECTORY`, `BUNDLE_PATH`,
`FILE_OR_DIRECTORY`).

A factory takes a help text (or a default) only where the commands sharing the option say different things;
every option it makes is a `SharedOption` naming its factory, so `tests/test_cli_options.py` can hold the rule:
an option name two commands declare comes from here, and one factory always makes the same option.

Import-light (`obsplan --help` loads this through `edge.py`): the checks run by callbacks import their module
when a value is checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Any], Any]

LOCK_FILE = click.Path(dir_okay=False, path_type=Path)
"""A file obsplan reads or writes (a lock, an inventory, a key, facts JSON)."""


class _Directory(click.Path):
    """click's `file_okay=False` refuses only regular files: a device, a FIFO or a socket passed as a directory
    (`--root /dev/null`) went through and failed deep inside the command. Anything that exists and is not a
    directory is refused here (a usage error, exit 2); a missing one is the command's to create or report."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if os.path.lexists(path) and not os.path.isdir(path):
            self.fail(f"{str(path)!r} exists and is not a directory.", param, ctx)
        return path


DIRECTORY = _Directory(file_okay=False, path_type=Path)
"""A directory (a host root, a state directory, a folder of facts)."""
BUNDLE_PATH = click.Path(path_type=Path)
"""A bundle: its directory, or the one plain tar `obsplan bundle -o FILE.tar` writes."""
FILE_OR_DIRECTORY = click.Path(path_type=Path)
"""A file or a directory, decided by another option (the command checks which)."""

MODES = click.Choice(["safe", "standard", "fast"])
SERVICE_MANAGERS = click.Choice(["auto", "systemd", "supervisord"])


class SharedOption(click.Option):
    """An option made by a factory of this module (`factory` names it)."""

    def __init__(self, *args: Any, factory: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.factory = factory


def _option(factory: str, *decls: str, **attrs: Any) -> Decorator:
    return click.option(*decls, cls=SharedOption, factory=factory, **attrs)


def _all(*options: Decorator) -> Decorator:
    """Several options as one decorator, in the order given (as `--help` lists them)."""

    def decorate(f: Any) -> Any:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _checked(module: str, check: str, *args: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback running `module.check(*args, value)`: bad input is a usage error (exit 2) while the command
    line is parsed, before anything else happens."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        import importlib

        from obsplan.kernel.errors import ObsplanError

        try:
            return getattr(importlib.import_module(module), check)(*args, value)
        except ObsplanError as exc:
            raise click.BadParameter(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None

    return callback


def seconds_check(option: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback refusing a number of seconds `obsplan.rollout.numbers.seconds` refuses."""
    return _checked("obsplan.rollout.numbers", "seconds", option)


def host_names_check(option: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback refusing a host list that names no host (`obsplan.rollout.numbers.host_names`)."""
    return _checked("obsplan.rollout.numbers", "host_names", option)


# -- every command ---------------------------------------------------------------------------------------------


def json_option(f: Any) -> Any:
    """`--json` into `as_json`."""
    return _option("json_option", "--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(f)


def output_file_option(help: str, required: bool = False) -> Decorator:
    """`-o/--output FILE` into the `output` parameter."""
    return _option("output_file_option", "-o", "--output", type=LOCK_FILE, required=required, help=help)


def output_facts_option(help: str) -> Decorator:
    """`-o/--output FILE|DIR` (`facts`): one host's facts file, or with `--inventory` the fleet's folder (the
    command checks which, since click cannot know before it sees `--inventory`)."""
    return _option("output_facts_option", "-o", "--output", type=FILE_OR_DIRECTORY, help=help)


def output_bundle_option(help: str) -> Decorator:
    """`-o/--output DIR|FILE.tar` (`bundle`): a bundle's directory or tar."""
    return _option("output_bundle_option", "-o", "--output", type=BUNDLE_PATH, help=help)


def output_dir_option(f: Any) -> Any:
    """`-o/--output DIR` (required) into `out` (`export ansible`)."""
    return _option("output_dir_option", "-o", "--output", "out", required=True, type=DIRECTORY)(f)


def show_all_option(help: str) -> Decorator:
    """`--all` into `show_all`: show what is left out by default (each command says what)."""
    return _option("show_all_option", "--all", "show_all", is_flag=True, help=help)


def max_chars_diff_option(f: Any) -> Any:
    """`diff --max-chars N`: at least 1000, no default (the PR comment's limit)."""
    return _option(
        "max_chars_diff_option",
        "--max-chars",
        type=click.IntRange(min=1000),
        help="markdown: cut details beyond this many characters (e.g. to post several diffs in one comment).",
    )(f)


def max_chars_report_option(f: Any) -> Any:
    """`report --max-chars N`: 0 is no limit."""
    return _option(
        "max_chars_report_option",
        "--max-chars",
        type=click.IntRange(min=0),
        default=None,
        help="Cut details beyond this many characters (default: just under GitHub's 65,536; 0: no limit).",
    )(f)


# -- the compiler's commands -----------------------------------------------------------------------------------


def config_options(f: Any) -> Any:
    """`--config-dir`, `--env`, `--offline`: which configuration, which environment, whether to go online."""
    name = "config_options"
    return _all(
        _option(name, "--offline", is_flag=True, help="Never touch the network (cache, then embedded snapshot)."),
        _option(name, "--env", "env", default="default", show_default=True, help="Environment in versions.yaml."),
        _option(
            name,
            "--config-dir",
            type=DIRECTORY,
            default=Path("."),
            show_default=True,
            help="Directory with versions.yaml and upgrade-policy.yaml.",
        ),
    )(f)


def facts_files_option(f: Any) -> Any:
    """`plan --facts FILE|DIR` (repeatable) into `facts_paths`."""
    return _option(
        "facts_files_option",
        "--facts",
        "facts_paths",
        multiple=True,
        type=click.Path(path_type=Path),
        help="Host facts JSON from 'obsplan facts' (repeatable, or a folder of them): plan from what the host runs.",
    )(f)


# -- the host's commands ---------------------------------------------------------------------------------------


def root_option(help: str = "Prefix for every host path (rehearse into a directory).") -> Decorator:
    """`--root DIR`: the host's filesystem root (default `/`)."""
    return _option("root_option", "--root", type=DIRECTORY, default=Path("/"), show_default=True, help=help)


def lock_file_option(help: str) -> Decorator:
    """`--lock FILE` into the `lock_path` parameter (optional; the command says what its absence means)."""
    return _option("lock_file_option", "--lock", "lock_path", type=LOCK_FILE, help=help)


def allow_unverified_option(help: str) -> Decorator:
    """`--allow-unverified`: accept artifacts the lock has no sha256 for (each command says what it then does)."""
    return _option("allow_unverified_option", "--allow-unverified", is_flag=True, help=help)


def allowed_signers_option(f: Any) -> Any:
    """`--allowed-signers FILE`: LOCK is refused unless signed by one of its keys."""
    return _option(
        "allowed_signers_option",
        "--allowed-signers",
        type=LOCK_FILE,
        help="Refuse LOCK (exit 2) unless LOCK.sig is a valid 'obsplan-lock' SSH signature by a key in this "
        "allowed-signers file (ssh-keygen -Y verify).",
    )(f)


def service_manager_option(
    help: str = "auto: systemd when it runs and --root is /, else a supervisord obsplan manages under --root.",
) -> Decorator:
    """`--service-manager auto|systemd|supervisord`."""
    return _option(
        "service_manager_option",
        "--service-manager",
        type=SERVICE_MANAGERS,
        default="auto",
        show_default=True,
        help=help,
    )


def mode_option(help: str | None = None, default: str | None = "safe") -> Decorator:
    """`--mode safe|standard|fast` (default safe, seed 003's "Safe Mode (default)"): the health window and
    parallelism of a step; `rollout` has no default (the hosts' apply decides)."""
    return _option("mode_option", "--mode", type=MODES, default=default, show_default=default is not None, help=help)


def health_timeout_option(help: str | None = None, callback: Any = None) -> Decorator:
    """`--health-timeout SECONDS`: the health window instead of the mode's."""
    return _option("health_timeout_option", "--health-timeout", type=float, callback=callback, help=help)


def dry_run_option(help: str) -> Decorator:
    """`--dry-run`: say what would happen, change nothing (each command says what it prints)."""
    return _option("dry_run_option", "--dry-run", is_flag=True, help=help)


def force_option(help: str) -> Decorator:
    """`--force`: go ahead past a refusal (each command says which)."""
    return _option("force_option", "--force", is_flag=True, help=help)


def bundle_option(help: str) -> Decorator:
    """`--bundle DIR|FILE.tar`: a bundle from `obsplan bundle`."""
    return _option("bundle_option", "--bundle", type=BUNDLE_PATH, help=help)


def apply_options(f: Any) -> Any:
    """Every option of `apply` and `resume` (both converge, so they take the same), in `--help`'s order."""
    name = "apply_options"
    return _all(
        root_option(),
        mode_option("safe: serial, 120 s health window; standard: 60 s; fast: parallel within a phase, 20 s."),
        dry_run_option("Print every action; change nothing under --root."),
        _option(name, "--phase", help="Only steps of this phase."),
        _option(name, "--component", help="Only steps of this component."),
        service_manager_option(),
        force_option("Apply a step even when the host is off the plan's path."),
        _option(
            name,
            "--rehearse",
            is_flag=True,
            help="Rehearse one-way steps (those setting a rollback floor) on a copy of the data before their "
            "switch, as --mode safe does.",
        ),
        _option(
            name,
            "--artifacts",
            "artifacts_dir",
            type=DIRECTORY,
            help="Take artifacts from this directory (by file name) instead of downloading.",
        ),
        bundle_option(
            "Take every artifact from this bundle (directory or .tar from 'obsplan bundle'); its lock "
            "must be byte-identical to LOCK; never opens a network connection."
        ),
        _option(
            name,
            "--auto",
            is_flag=True,
            help="Unattended: run only steps approved in the lock or with 'obsplan approve'; the others "
            "(and steps requiring them) stay pending approval, which is not a failure (exit 0).",
        ),
        allow_unverified_option(
            "Install artifacts the lock has no sha256 for (refused otherwise); warns per artifact and "
            "is recorded in the history."
        ),
        health_timeout_option("Override the mode's health window (seconds)."),
        _option(
            name,
            "--keep-versions",
            type=int,
            help="Versions/rollback points kept (default: the lock's host_policy.keep_versions, 3).",
        ),
        _option(
            name,
            "--keep-days",
            type=float,
            help="Max age of old versions and backups (default: the lock's host_policy.retention_days, 30).",
        ),
        allowed_signers_option,
        json_option,
    )(f)


# -- the fleet's commands --------------------------------------------------------------------------------------


def inventory_option(help: str) -> Decorator:
    """`--inventory FILE`: the fleet's hosts (obsplan's YAML, or Ansible's YAML or INI)."""
    return _option("inventory_option", "--inventory", type=LOCK_FILE, help=help)


def state_dir_option(help: str) -> Decorator:
    """`--state-dir DIR`: where the rollout journal (rollouts.db) lives."""
    return _option("state_dir_option", "--state-dir", type=DIRECTORY, help=help)


def facts_dir_option(help: str) -> Decorator:
    """`--facts DIR` into `facts_dir`: facts collected by `obsplan facts --inventory I -o DIR`."""
    return _option("facts_dir_option", "--facts", "facts_dir", type=DIRECTORY, help=help)


def history_limit_option(f: Any) -> Any:
    """`history --limit N`: how many rows."""
    return _option("history_limit_option", "--limit", type=click.IntRange(min=1), default=50, show_default=True)(f)


def hosts_limit_option(f: Any) -> Any:
    """`rollout --limit NAMES`: only these hosts."""
    return _option(
        "hosts_limit_option",
        "--limit",
        callback=host_names_check("--limit"),
        help="Only these hosts (comma-separated names).",
    )(f)


def rollout_shape_options(f: Any) -> Any:
    """The rollout's shape, the same for `rollout` and `export ansible`: batch sizes and the gates between them."""
    name = "rollout_shape_options"
    return _all(
        _option(
            name, "--canary", type=click.IntRange(min=0), default=1, show_default=True, help="Hosts in the first batch."
        ),
        _option(
            name,
            "--batches",
            default="10%,50%,100%",
            show_default=True,
            callback=_checked("obsplan.rollout.numbers", "batch_spec"),
            help="Cumulative targets after the canary.",
        ),
        _option(
            name,
            "--gate",
            "gates",
            multiple=True,
            callback=_checked("obsplan.rollout.numbers", "gate_expressions"),
            help="PromQL that must be non-empty and non-zero ($HOSTS: hosts done so far).",
        ),
        _option(
            name,
            "--prometheus",
            callback=_checked("obsplan.rollout.numbers", "prometheus_url"),
            help="Prometheus URL for gates (default: the inventory's, else the host whose components include it).",
        ),
        _seconds_option("--soak", 0.0, "Seconds of measurements per gate."),
        _seconds_option("--interval", 10.0, "Seconds between measurements."),
        _seconds_option("--initial-delay", 0.0, "Seconds after a batch before the first measurement."),
    )(f)


def _seconds_option(flag: str, default: float, help: str) -> Decorator:
    return _option(
        "rollout_shape_options",
        flag,
        type=float,
        default=default,
        show_default=True,
        callback=seconds_check(flag),
        help=help,
    )
