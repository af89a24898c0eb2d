"""`obsplan rollout`: a lock across a fleet (canary, batches, Prometheus gates, journal and resume), and
`obsplan export ansible`: the same per-host work as an Ansible playbook."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from obsplan.cli.edge import guarded
from obsplan.cli.shared_options import (
    LOCK_FILE,
    bundle_option,
    dry_run_option,
    facts_dir_option,
    health_timeout_option,
    host_names_check,
    hosts_limit_option,
    inventory_option,
    json_option,
    mode_option,
    output_dir_option,
    rollout_shape_options,
    seconds_check,
    state_dir_option,
)

ROLLOUT_HELP = """Roll a lock out to a fleet: canary, batches, gates.

Roll LOCK out to the hosts of an inventory over SSH: a canary, then cumulative batches, with
Prometheus gates between them; journalled so a halted or killed rollout can be resumed."""

if TYPE_CHECKING:
    from obsplan.rollout.orchestrator import RolloutOptions

EPILOG = (
    "Exit codes: 0 rollout done (or --dry-run / --status printed), 1 halted (a host failed beyond "
    "--failure-limit, or a gate failed), 2 bad input (lock, inventory, flags), 3 internal error."
)


def _status(given: Path | None, rollout_id: str | None, as_json: bool) -> None:
    from obsplan.rollout.journal.rollouts_db import Journal
    from obsplan.rollout.orchestrator import summary_markdown

    journal = Journal(_state_dir(given))
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


def _apply_args(mode: str | None, health_timeout: float | None) -> list[str]:
    """What `rollout` passes on to `obsplan apply` on each host."""
    return (["--mode", mode] if mode else []) + (["--health-timeout", str(health_timeout)] if health_timeout else [])


@click.command("rollout", epilog=EPILOG, help=ROLLOUT_HELP)
@click.argument("lock", required=False, type=LOCK_FILE)
@inventory_option("obsplan YAML inventory, or an Ansible inventory (YAML, or INI through ansible-core).")
@bundle_option("Bundle tar uploaded to each host (apply --bundle).")
@click.option(
    "--bootstrap",
    is_flag=True,
    help="Install obsplan from the bundle's wheelhouse (bundle --with-obsplan) on hosts without a working one.",
)
@rollout_shape_options
@click.option(
    "--canary-hosts",
    callback=host_names_check("--canary-hosts"),
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
@hosts_limit_option
@state_dir_option("Journal directory (default: $XDG_STATE_HOME/obsplan or ~/.local/state/obsplan).")
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
@facts_dir_option("With --dry-run: facts collected earlier (DIR/HOST.json, `obsplan facts --inventory I -o DIR`).")
@click.option("--status", "show_status", is_flag=True, help="Show the newest rollout (Markdown, or --json).")
@click.option("--rollout-id", help="With --status: this rollout instead of the newest.")
@dry_run_option("Print the batches and per-host steps; touch nothing.")
@mode_option("Passed to apply on each host.", default=None)
@health_timeout_option("Passed to apply on each host.", callback=seconds_check("--health-timeout"))
@json_option
@guarded
def rollout_cmd(
    lock: Path | None,
    inventory: Path | None,
    bundle: Path | None,
    bootstrap: bool,
    canary: int,
    batches: str,
    gates: tuple[str, ...],
    prometheus: str | None,
    soak: float,
    interval: float,
    initial_delay: float,
    canary_hosts: str | None,
    failure_limit: int,
    on_gate_failure: str,
    limit: str | None,
    state_dir: Path | None,
    resume: bool,
    override_gates: bool,
    retry_failed: bool,
    facts_dir: Path | None,
    show_status: bool,
    rollout_id: str | None,
    dry_run: bool,
    mode: str | None,
    health_timeout: float | None,
    as_json: bool,
) -> None:
    from obsplan.rollout.orchestrator import RolloutOptions

    if show_status:
        return _status(state_dir, rollout_id, as_json)
    lock, inventory = _required(lock, inventory)
    opts = RolloutOptions(
        lock=lock,
        inventory=inventory,
        state_dir=_state_dir(state_dir),
        bundle=bundle,
        canary=canary,
        batches=batches,
        gates=list(gates),
        prometheus=prometheus,
        soak=soak,
        interval=interval,
        initial_delay=initial_delay,
        failure_limit=failure_limit,
        on_gate_failure=on_gate_failure,
        limit=[x.strip() for x in (limit or "").split(",") if x.strip()],
        resume=resume,
        dry_run=dry_run,
        apply_args=_apply_args(mode, health_timeout),
        canary_hosts=canary_hosts,
        facts_dir=facts_dir,
        override_gates=override_gates,
        retry_failed=retry_failed,
        explicit=_explicit(),
        bootstrap=bootstrap,
    )
    sys.exit(_run(opts, as_json))


def _state_dir(given: Path | None) -> Path:
    """The journal's directory: --state-dir, else the default."""
    from obsplan.rollout.journal.rollouts_db import default_state_dir

    return given or default_state_dir()


def _required(lock: Path | None, inventory: Path | None) -> tuple[Path, Path]:
    """LOCK and --inventory, which every rollout but --status needs."""
    if lock is None or inventory is None:
        from obsplan.kernel.errors import ObsplanError

        raise ObsplanError(
            "LOCK and --inventory are required", key="--inventory", hint="obsplan rollout LOCK --inventory hosts.yaml"
        )
    return lock, inventory


def _run(opts: RolloutOptions, as_json: bool) -> int:
    from obsplan.rollout.orchestrator import rollout
    from obsplan.rollout.report import RolloutReporter

    return rollout(opts, RolloutReporter(as_json))


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
@click.argument("lock", type=LOCK_FILE)
@output_dir_option
@inventory_option("Size the batches exactly as `obsplan rollout` would for this inventory.")
@rollout_shape_options
@bundle_option("Bundle tar copied to each host.")
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
