"""`obsplan report LOCK`: render the Markdown report of a lock (what `plan` writes next to it)."""

from __future__ import annotations

from pathlib import Path

import click

from obsplan.cli_edge import emit_json, guarded, json_option


@click.command("report")
@click.argument("lock", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report here (default: standard output).",
)
@click.option(
    "--max-chars",
    type=click.IntRange(min=0),
    default=None,
    help="Cut details beyond this many characters (default: just under GitHub's 65,536; 0: no limit).",
)
@json_option
@guarded
def report(lock: Path, output: Path | None, max_chars: int | None, as_json: bool) -> None:
    """Render LOCK's Markdown report: decisions first, then tables and folded details."""
    from obsplan.compiler.lock import load_lock, write_atomic
    from obsplan.compiler.report import REPORT_LIMIT, render_markdown

    limit = REPORT_LIMIT if max_chars is None else (max_chars or None)
    text = render_markdown(load_lock(lock), limit=limit)
    if output is not None:
        write_atomic(output, text)
    if as_json:
        emit_json({"lock": str(lock), "report": str(output) if output else None, "chars": len(text)})
    elif output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output} ({len(text):,} characters)")


def register(group: click.Group) -> None:
    group.add_command(report)
