"""Compiler commands: plan, check-upgrades, list-versions, diff, snapshot refresh."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from obsplan.cli.edge import emit_json, fail, guarded
from obsplan.cli.shared_options import (
    config_options,
    facts_files_option,
    json_option,
    max_chars_diff_option,
    output_file_option,
    show_all_option,
)
from obsplan.cli.sign_command import sign_key_option, sign_lock
from obsplan.compiler.config.inputs import load_inputs
from obsplan.compiler.config.plan_options import Options
from obsplan.compiler.render.plan_report import render_markdown, upgrade_lines
from obsplan.compiler.run import Settings, compile_environment, refresh_snapshot, release_data
from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.safeio.fsio import write_atomic, write_output

if TYPE_CHECKING:
    from obsplan.compiler.config.inputs import Inputs
    from obsplan.lock.hostfacts import FactsInput
    from obsplan.lock.lockfile import Lock


@click.command()
@config_options
@output_file_option("Lock file to write [default: plans/<env>.lock].")
@click.option(
    "--check", is_flag=True, help="Exit 1 and list how the lock differs from what its inputs decide (no network)."
)
@click.option("--require-checksums", is_flag=True, help="With --check: an artifact without a sha256 is a failure too.")
@click.option("--upgrade", is_flag=True, help="Re-resolve every component instead of keeping locked versions.")
@click.option(
    "--upgrade-package",
    "upgrade_packages",
    multiple=True,
    metavar="NAME",
    help="Re-resolve one component (repeatable).",
)
@click.option("--allow", "allow", multiple=True, metavar="RULE", help="Override an overridable matrix rule.")
@click.option("--no-report", is_flag=True, help="Do not write the Markdown report next to the lock.")
@click.option(
    "--advisories",
    "advisory_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Directory (or file) of OSV JSON advisories (repeatable; adds to the policy's list).",
)
@sign_key_option
@facts_files_option
@json_option
@guarded
def plan(
    config_dir: Path,
    env: str,
    offline: bool,
    output: Path | None,
    check: bool,
    require_checksums: bool,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    allow: tuple[str, ...],
    no_report: bool,
    advisory_dirs: tuple[Path, ...],
    facts_paths: tuple[Path, ...],
    sign_key: Path | None,
    as_json: bool,
) -> None:
    """Resolve versions and write the lock and its upgrade plan."""
    lock_path = output or Path("plans") / f"{env}.lock"
    _lock_file(lock_path)
    inputs = load_inputs(config_dir)
    settings = Settings.from_env()
    opts = Options(
        environment=env,
        now=settings.now,
        offline=offline,
        upgrade=upgrade,
        upgrade_packages=frozenset(upgrade_packages),
        allow=frozenset(allow),
        facts=_fleet_facts(facts_paths) if facts_paths and not (check or require_checksums) else None,  # --check: none
        previous_lock=lock_path,
        advisory_dirs=advisory_dirs,
    )
    if check or require_checksums:
        _run_check(inputs, opts, settings, check, require_checksums, as_json)
    _known_components(upgrade_packages, sorted(inputs.versions.components))
    result = compile_environment(inputs, opts, settings)
    if result.refusals:
        if not as_json:
            for r in result.refusals:
                click.echo(f"refused: {r}", err=True)
        message = f"plan for {env!r} refused by {len(result.refusals)} rule(s); no file written"
        fail(message, EXIT_FAILED, as_json, refusals=[str(r) for r in result.refusals])
    lock = result.lock
    report_path = _write_outputs(lock, lock_path, sign_key, no_report, settings.cache_dir)
    if as_json:
        emit_json(
            {
                "lock": str(lock_path),
                "report": None if report_path is None else str(report_path),
                "components": upgrade_lines(lock),
                "steps": [s.model_dump(mode="json") for s in lock.plan.steps],
            }
        )
        return
    _print_plan(lock, settings, lock_path, report_path)


def _run_check(
    inputs: Inputs, opts: Options, settings: Settings, check: bool, require_checksums: bool, as_json: bool
) -> None:
    """`plan --check [--require-checksums]`: compare the lock `opts.previous_lock` with its inputs, report, exit."""
    from obsplan.compiler.check import check_lock, missing_checksums

    if not check:
        raise ObsplanError(
            "--require-checksums is a question of --check", key="--require-checksums", hint="add --check"
        )
    assert opts.previous_lock is not None  # plan always names the lock it writes
    lock_path = opts.previous_lock
    problems = check_lock(lock_path, inputs, opts, settings, require_checksums=require_checksums)
    _check_only(problems, lock_path, as_json, None if require_checksums else missing_checksums(lock_path))


def _check_only(problems: list[str], lock_path: Path, as_json: bool, missing: list[str] | None) -> None:
    """`plan --check`: say whether the lock says what its inputs decide, and exit (1 when it does not). Missing
    checksums (`missing`, when not asked to fail on them) are a note: apply refuses those artifacts anyway."""
    if as_json:
        emit_json(
            {"lock": str(lock_path), "ok": not problems, "problems": problems, "missing_checksums": missing or []}
        )
    else:
        for p in problems:
            click.echo(p)
        if missing:
            click.echo(
                f"note: {len(missing)} artifact(s) have no sha256 (apply refuses them; see the report's summary; "
                "--require-checksums makes this fail)",
                err=True,
            )
        click.echo(f"{lock_path}: {'up to date' if not problems else f'{len(problems)} problem(s)'}")
    sys.exit(EXIT_FAILED if problems else 0)


def _lock_file(path: Path) -> None:
    """The lock `plan` writes is a file it reads again on the next run, with its report and signature beside it:
    `-o /dev/null` or `-o /dev/stdout` is refused before anything is compiled (never replaced by a file)."""
    if path.exists() and not path.is_file():
        raise ObsplanError(
            "the lock plan writes must be a file (it is read again on the next plan, its report is written beside it)",
            file=str(path),
            key="-o",
            hint="name a file; to see the plan without writing one: obsplan check-upgrades",
        )


def _known_components(names: tuple[str, ...], known: list[str]) -> None:
    for name in names:
        if name not in known:
            raise ObsplanError(
                f"unknown component {name!r}", key="--upgrade-package", hint=f"one of: {', '.join(known)}"
            )


def _write_outputs(
    lock: Lock, lock_path: Path, sign_key: Path | None, no_report: bool, cache_dir: Path | None
) -> Path | None:
    """Write the lock (signed when asked) and its Markdown report (its compiled template kept in `cache_dir`);
    the report's path, or None without one."""
    write_atomic(lock_path, lock.to_json())
    if sign_key is not None:
        sign_lock(lock_path, sign_key)
    if no_report:
        return None
    report_path = lock_path.with_suffix(".md")
    write_atomic(report_path, render_markdown(lock, cache_dir=cache_dir))
    return report_path


def _print_plan(lock: Lock, settings: Settings, lock_path: Path, report_path: Path | None) -> None:
    _print_table(lock, settings)
    click.echo("")
    if lock.plan.steps:
        click.echo("Plan:")
        for i, s in enumerate(lock.plan.steps, 1):
            why = "; ".join(r.code for r in s.reasons)
            click.echo(
                f"  {i}. [{s.phase}] {s.component}: {s.from_version or '(install)'} → {s.to_version}"
                f"  risk={s.risk}  ({why})"
            )
    else:
        click.echo("Plan: nothing to do.")
    for name, c in lock.components.items():
        for w in c.warnings:
            click.echo(f"warning: {name}: {w}", err=True)
    click.echo(f"\nwrote {lock_path}" + ("" if report_path is None else f" and {report_path}"))


def _print_table(lock, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    for row in upgrade_lines(lock):
        comp = lock.components[row["component"]]
        age = ""
        if comp.source.as_of:
            age = f", {(settings.now.date() - date.fromisoformat(comp.source.as_of)).days} days old"
        arrow = f"{row['current'] or '(none)'} → {row['target']}"
        click.echo(f"{row['component']}: {arrow} ({row['status']}) risk={row['risk']} source={row['source']}{age}")


@click.command("check-upgrades")
@config_options
@json_option
@guarded
def check_upgrades(config_dir: Path, env: str, offline: bool, as_json: bool) -> None:
    """Show available upgrades without writing files."""
    settings = Settings.from_env()
    previous = Path("plans") / f"{env}.lock"
    opts = Options(environment=env, now=settings.now, offline=offline, upgrade=True, previous_lock=previous)
    result = compile_environment(load_inputs(config_dir), opts, settings)
    if as_json:
        emit_json({"components": upgrade_lines(result.lock), "refusals": [str(r) for r in result.refusals]})
        return
    _print_table(result.lock, settings)
    for r in result.refusals:
        click.echo(f"refused: {r}")


@click.command("list-versions")
@click.argument("component")
@config_options
@show_all_option("Include pre-releases and tags that are not releases.")
@json_option
@guarded
def list_versions(component: str, config_dir: Path, env: str, offline: bool, show_all: bool, as_json: bool) -> None:
    """Known release versions of a component, newest first."""
    from obsplan.compiler.sources.release_list import component_definition, release_rows

    inputs = load_inputs(config_dir) if (config_dir / "versions.yaml").exists() else None
    defn, env_offline = component_definition(component, inputs, env)
    found, note = release_data(defn.github_repo, Settings.from_env(), offline or env_offline)
    if note and not as_json:
        click.echo(f"note: {note}", err=True)
    rows = release_rows(found, defn, show_all)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(
            f"{r['version'] or '-':<24} {r['tag']:<32} {r['date'] or ''}"
            + (" (pre-release)" if r["prerelease"] else "")
        )


@click.command()
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown: the PR comment a CI job posts (always under GitHub's 65,536 characters).",
)
@show_all_option("Also show data-source differences (source github → cache).")
@max_chars_diff_option
@json_option
@guarded
def diff(old: str, new: str, fmt: str, show_all: bool, max_chars: int | None, as_json: bool) -> None:
    """What changed between two locks (files or REV:PATH).

    Differences between two locks: versions, steps, artifacts, checksums, approvals, advisories.

    OLD and NEW are lock files or REV:PATH read through git, e.g.
    obsplan diff main:plans/prod.lock plans/prod.lock --format markdown"""
    from obsplan.compiler.render.diff_markdown import render_diff_markdown
    from obsplan.compiler.render.lock_diff import diff_locks, render_diff, summary_counts
    from obsplan.lock.review import format_note
    from obsplan.lock.revision_ref import read_lock_ref

    a, b = read_lock_ref(old), read_lock_ref(new)
    rows, note = diff_locks(a, b, show_all=show_all), format_note(a, b, old, new)
    if as_json or fmt == "json":
        summary = summary_counts(rows)
        emit_json({"a": old, "b": new, "all": show_all, "components": rows, "summary": summary, "format": note})
    elif fmt == "markdown":
        head = f"{note}\n\n" if note else ""
        click.echo(head + render_diff_markdown(rows, summary_counts(rows), old, new, show_all, max_chars), nl=False)
    else:
        click.echo((f"{note}\n" if note else "") + render_diff(rows, old, new), nl=False)


@click.group()
def snapshot() -> None:
    """The release snapshot used when GitHub cannot be reached."""


@snapshot.command("refresh")
@output_file_option("Where to write the refreshed snapshot JSON.", required=True)
@click.option(
    "--checksums-from",
    "checksums_from",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of locks whose verified checksums the snapshot carries (repeatable).",
)
@json_option
@guarded
def snapshot_refresh(output: Path, checksums_from: tuple[Path, ...], as_json: bool) -> None:
    """Fetch every built-in component's releases from the GitHub API into a snapshot file."""
    settings = Settings.from_env(use_cache=False)
    text = refresh_snapshot(settings, checksums_from)
    write_output(output, text)
    if as_json:
        emit_json({"output": str(output)})
    else:
        click.echo(f"wrote {output}")


def register(group: click.Group) -> None:
    """Attach the compiler commands to the main group."""
    for cmd in (plan, check_upgrades, list_versions, diff, snapshot):
        group.add_command(cmd)


def _fleet_facts(paths: tuple[Path, ...]) -> FactsInput | None:
    """`plan --facts`: the fleet's from-state (host facts models are imported only when asked for)."""
    from obsplan.lock.hostfacts import read_fleet

    return read_fleet(paths)
