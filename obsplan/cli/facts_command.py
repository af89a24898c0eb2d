"""`obsplan facts`: write this host's facts (per component installed/linked/served version) as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from obsplan.cli.edge import emit_json, guarded
from obsplan.cli.shared_options import (
    inventory_option,
    json_option,
    lock_file_option,
    output_facts_option,
    root_option,
)


def _fleet(inventory: Path, output: Path | None, as_json: bool) -> None:
    from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
    from obsplan.rollout.fleet_facts import collect_to

    if output is None:
        raise ObsplanError("--inventory needs -o DIR", key="-o", hint="obsplan facts --inventory hosts.yaml -o facts/")
    written, errors = collect_to(inventory, output)
    if as_json:
        emit_json({"written": [str(w) for w in written], "errors": errors})
    else:
        for w in written:
            click.echo(f"wrote {w}", err=True)
        for host, why in sorted(errors.items()):
            click.echo(f"{host}: no facts: {why}", err=True)
    if errors:
        sys.exit(EXIT_FAILED)


def register(group: click.Group) -> None:
    @group.command(
        "facts", epilog="Exit codes: 0 written, 1 a host gave no facts (--inventory), 2 bad input (an unreadable lock)."
    )
    @root_option("Host root (as for apply).")
    @lock_file_option("Observe the components of this lock (default: every built-in component).")
    @output_facts_option(
        "Write the JSON here (default: stdout); read by 'obsplan plan --facts FILE'. With --inventory: a directory."
    )
    @inventory_option("Collect every host's facts over SSH (as `obsplan rollout` connects) into -o DIR/HOST.json.")
    @json_option
    @guarded
    def facts_cmd(
        root: Path, lock_path: Path | None, output: Path | None, inventory: Path | None, as_json: bool
    ) -> None:
        """This host's installed, linked and served versions, as JSON.

        Write the host's facts as JSON: per component the installed, linked and served version, how each
        was observed and whether obsplan manages it, plus platform and obsplan version."""
        from obsplan.executor.host.facts_collect import collect
        from obsplan.kernel.errors import ObsplanError
        from obsplan.lock.lockfile import load_lock
        from obsplan.safeio.fsio import write_output

        if inventory is not None:
            _fleet(inventory, output, as_json)
            return

        if output is not None and output.is_dir():
            raise ObsplanError(
                "-o is a folder", file=str(output), key="-o", hint="name a file, or add --inventory to fill the folder"
            )
        lock = load_lock(lock_path) if lock_path is not None else None
        facts = collect(root, lock)
        text = json.dumps(facts.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
        if output is None:
            click.echo(text, nl=False)  # the facts are JSON already, with or without --json
            return
        write_output(output, text)
        if as_json:
            emit_json({"output": str(output), "components": len(facts.components)})
        else:
            click.echo(f"wrote {output} ({len(facts.components)} components)", err=True)
