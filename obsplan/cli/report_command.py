"""`obsplan report LOCK...`: render the Markdown report of a lock (what `plan` writes next to it)."""

from __future__ import annotations

from pathlib import Path

import click

from obsplan.cli.edge import emit_json, guarded
from obsplan.cli.shared_options import json_option, max_chars_report_option, output_file_option
from obsplan.kernel.errors import ObsplanError


@click.command("report")
@click.argument("locks", metavar="LOCK...", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@output_file_option("Write the report of the one LOCK here (default: standard output).")
@click.option("--write", is_flag=True, help="Write each LOCK's report next to it (LOCK with .md), as 'plan' does.")
@max_chars_report_option
@json_option
@guarded
def report(locks: tuple[Path, ...], output: Path | None, write: bool, max_chars: int | None, as_json: bool) -> None:
    """Render the Markdown report of a lock (decisions first).

    Render the Markdown report of LOCK: decisions first, then tables and folded details."""
    from obsplan.compiler.render.plan_report import REPORT_LIMIT, render_markdown
    from obsplan.lock.lockfile import load_lock
    from obsplan.safeio.fsio import write_atomic, write_output

    if len(locks) > 1 and not write:
        raise ObsplanError("several locks need --write (each report goes next to its lock)", key="LOCK")
    if output is not None and write:
        raise ObsplanError("give -o or --write, not both", key="--output")
    limit = REPORT_LIMIT if max_chars is None else (max_chars or None)
    texts = {lock: render_markdown(load_lock(lock), limit=limit) for lock in locks}
    targets = {lock: lock.with_suffix(".md") if write else output for lock in locks}
    for lock, text in texts.items():
        if (target := targets[lock]) is not None:
            (write_atomic if write else write_output)(target, text)  # --write: beside the lock; -o: the user's
    if as_json:
        emit_json(
            [
                {"lock": str(k), "report": str(targets[k]) if targets[k] else None, "chars": len(t)}
                for k, t in texts.items()
            ]
        )
        return
    for lock, text in texts.items():
        target = targets[lock]
        if target is None:
            click.echo(text, nl=False)
        else:  # on stderr: `-o /dev/stdout` gives the report alone on stdout
            click.echo(f"wrote {target} ({len(text):,} characters)", err=True)


def register(group: click.Group) -> None:
    group.add_command(report)
