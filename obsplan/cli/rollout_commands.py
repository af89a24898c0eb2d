"""`obsplan rollout`: a lock across a fleet (canary, batches, Prometheus gates, journal and resume), and
`obsplan export ansible`: the same per-host work as an Ansible playbook."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from obsplan.cli.edge import guarded, json_option

EPILOG = (
    "Exit codes: 0 rollout done (or --dry-run / --status printed), 1 halted (a host failed beyond "
    "--failure-limit, or a gate failed), 2 bad input (lock, inventory, flags), 3 internal error."
)


def _status(state_dir: Path, rollout_id: str | None, as_json: bool) -> None:
    from obsplan.rollout.journal.rollouts_db import Journal
    from obsplan.rollout.orchestrator import summary_markdown

    journal = Journal(state_dir)
    try:
        if as_json:
            ro = journal.rollout(rollout_id)
            data = (
                None
                if ro is None
                else {
                    **ro,
                    "host_results": journal.host_results(ro["id"]),
                    "gate_measurements": journal.measurements(ro["id"]),
                }
            )
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            click.echo(summary_markdown(journal, rollout_id), nl=False)
    finally:
        journal.close()


def _checked(check: Any) -> Any:
    """A click callback running one of obsplan.rollout.numbers' checks: bad input is a usage error (exit 2)
    while the command line is parsed, before anything else happens."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        from obsplan.kernel.errors import ObsplanError

        try:
            return check(value)
        except ObsplanError as exc:
            raise click.BadParameter(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None

    return callback


def _seconds(option: str) -> Any:
    from obsplan.rollout import numbers

    return _checked(lambda v: numbers.seconds(option, v))


def _batch_and_gate_options(f: Any) -> Any:
    """The rollout's shape, the same for `rollout` and `export ansible`: batch sizes and the gates between them."""
    from obsplan.rollout import numbers

    options = [
        click.option(
            "--canary", type=click.IntRange(min=0), default=1, show_default=True, help="Hosts in the first batch."
        ),
        click.option(
            "--batches",
            default="10%,50%,100%",
            show_default=True,
            callback=_checked(numbers.batch_spec),
            help="Cumulative targets after the canary.",
        ),
        click.option(
            "--gate",
            "gates",
            multiple=True,
            help="PromQL that must be non-empty and non-zero ($HOSTS: hosts done so far).",
        ),
        click.option(
            "--prometheus",
            callback=_checked(numbers.prometheus_url),
            help="Prometheus URL for gates (default: the inventory's, else the host whose components include it).",
        ),
        click.option(
            "--soak",
            type=float,
            default=0.0,
            show_default=True,
            callback=_seconds("--soak"),
            help="Seconds of measurements per gate.",
        ),
        click.option(
            "--interval",
            type=float,
            default=10.0,
            show_default=True,
            callback=_seconds("--interval"),
            help="Seconds between measurements.",
        ),
        click.option(
            "--initial-delay",
            type=float,
            default=0.0,
            show_default=True,
            callback=_seconds("--initial-delay"),
            help="Seconds after a batch before the first measurement.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _apply_args(mode: str | None, health_timeout: float | None) -> list[str]:
    """What `rollout` passes on to `obsplan apply` on each host."""
    return (["--mode", mode] if mode else []) + (["--health-timeout", str(health_timeout)] if health_timeout else [])


@click.command("rollout", epilog=EPILOG)
@click.argument("lock", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    help="obsplan YAML inventory, or an Ansible inventory (YAML, or INI through ansible-core).",
)
@click.option("--bundle", type=click.Path(path_type=Path), help="Bundle tar uploaded to each host (apply --bundle).")
@click.option(
    "--bootstrap",
    is_flag=True,
    help="Install obsplan from the bundle's wheelhouse (bundle --with-obsplan) on hosts without a working one.",
)
@_batch_and_gate_options
@click.option(
    "--canary-hosts",
    help="The canaries, by name (NAME[,NAME]) or label (KEY=VALUE); default: chosen (see --dry-run).",
)
@click.option(
    "--failure-limit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Failed hosts per batch, and failed measurements per gate, tolerated.",
)
@click.option("--on-gate-failure", type=click.Choice(["halt", "rollback"]), default="halt", show_default=True)
@click.option("--limit", help="Only these hosts (comma-separated names).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Journal directory (default: $XDG_STATE_HOME/obsplan or ~/.local/state/obsplan).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the newest unfinished rollout of LOCK with its journalled gates and batches; a failed gate "
    "is measured again first.",
)
@click.option(
    "--override-gates",
    is_flag=True,
    help="With --resume: use the gate/batch flags given now instead of the journalled ones (journalled).",
)
@click.option("--retry-failed", is_flag=True, help="With --resume: apply again the hosts that failed.")
@click.option(
    "--facts",
    "facts_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --dry-run: facts collected earlier (DIR/HOST.json, `obsplan facts --inventory I -o DIR`).",
)
@click.option("--status", "show_status", is_flag=True, help="Show the newest rollout (Markdown, or --json).")
@click.option("--rollout-id", help="With --status: this rollout instead of the newest.")
@click.option("--dry-run", is_flag=True, help="Print the batches and per-host steps; touch nothing.")
@click.option("--mode", type=click.Choice(["safe", "standard", "fast"]), help="Passed to apply on each host.")
@click.option(
    "--health-timeout", type=float, callback=_seconds("--health-timeout"), help="Passed to apply on each host."
)
@json_option
@guarded
def rollout_cmd(
    lock: Path | None,
    inventory: Path | None,
    state_dir: Path | None,
    show_status: bool,
    rollout_id: str | None,
    limit: str | None,
    gates: tuple[str, ...],
    mode: str | None,
    health_timeout: float | None,
    as_json: bool,
    **shape: Any,
) -> None:
    """Roll a lock out to a fleet: canary, batches, gates.

    Roll LOCK out to the hosts of an inventory over SSH: a canary, then cumulative batches, with
    Prometheus gates between them; journalled so a halted or killed rollout can be resumed."""
    from obsplan.kernel.errors import ObsplanError
    from obsplan.rollout.journal.rollouts_db import default_state_dir
    from obsplan.rollout.orchestrator import RolloutOptions, rollout
    from obsplan.rollout.report import RolloutReporter

    state = state_dir or default_state_dir()
    if show_status:
        _status(state, rollout_id, as_json)
        return
    if lock is None or inventory is None:
        raise ObsplanError(
            "LOCK and --inventory are required", key="--inventory", hint="obsplan rollout LOCK --inventory hosts.yaml"
        )
    opts = RolloutOptions(
        lock=lock,
        inventory=inventory,
        state_dir=state,
        gates=list(gates),
        limit=[x.strip() for x in (limit or "").split(",") if x.strip()],
        apply_args=_apply_args(mode, health_timeout),
        explicit=_explicit(),
        **shape,
    )
    sys.exit(rollout(opts, RolloutReporter(as_json)))


def _explicit() -> set[str]:
    """The rollout options given on the command line (or by environment): only these are compared with the
    journal on --resume; a default never contradicts it."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return {name for name in ctx.params if ctx.get_parameter_source(name) in given}


@click.group("export")
def export_group() -> None:
    """Export the rollout for other tools (Ansible)."""


@export_group.command("ansible", epilog="Exit codes: 0 written, 2 bad input (lock, inventory, flags).")
@click.argument("lock", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Size the batches exactly as `obsplan rollout` would for this inventory.",
)
@_batch_and_gate_options
@click.option("--bundle", type=click.Path(dir_okay=False, path_type=Path), help="Bundle tar copied to each host.")
@json_option
@guarded
def export_ansible_cmd(
    lock: Path,
    out: Path,
    inventory: Path | None,
    canary: int,
    batches: str,
    gates: tuple[str, ...],
    prometheus: str | None,
    soak: float,
    interval: float,
    initial_delay: float,
    bundle: Path | None,
    as_json: bool,
) -> None:
    """Write a playbook + role doing the rollout's per-host work with Ansible `serial` batches and a `uri` gate."""
    import tempfile

    from obsplan.lock.read import open_lock
    from obsplan.rollout.ansible_export import export_ansible, serial_sizes
    from obsplan.rollout.batches import plan_batches
    from obsplan.rollout.inventory.hosts import load_inventory

    opened = open_lock(lock)  # read once: the role ships exactly the bytes checked here
    serial: list[int | str] = serial_sizes(canary, batches)
    if inventory is not None:
        inv = load_inventory(inventory)
        serial = [len(b.hosts) for b in plan_batches([h.name for h in inv.hosts], canary, batches)]
        prometheus = prometheus or inv.prometheus
    bundled = bundle.resolve() if bundle else None
    with tempfile.TemporaryDirectory(prefix="obsplan-export-") as private:
        copy = Path(private) / "obsplan.lock"
        copy.write_bytes(opened.data)
        args = (serial, list(gates), prometheus, soak, interval, initial_delay, bundled)
        files = export_ansible(opened.lock, copy, out, *args)
    if as_json:
        click.echo(json.dumps({"files": [str(f) for f in files], "serial": serial}, indent=2))
    else:
        click.echo(f"wrote {len(files)} files under {out}: ansible-playbook -i INVENTORY {out / 'site.yml'}")


def register(group: click.Group) -> None:
    group.add_command(rollout_cmd)
    group.add_command(export_group)
