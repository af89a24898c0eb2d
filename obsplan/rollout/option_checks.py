"""A rollout's options checked at parse time, before any host is touched: one line, exit 2, naming the flag."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Lock
from obsplan.rollout import numbers
from obsplan.rollout.inventory.hosts import Host

if TYPE_CHECKING:
    from obsplan.rollout.orchestrator import RolloutOptions


def check_options(opts: RolloutOptions, lock: Lock, hosts: list[Host]) -> None:
    """Every rollout option checked before any host is touched (`--dry-run` included): exit 2 naming the flag."""
    for h in hosts:
        unknown = [c for c in h.components or [] if c not in lock.components]
        if unknown:
            raise ObsplanError(
                f"host {h.name} lists component(s) {', '.join(unknown)} that the lock does not have",
                file=str(opts.inventory),
                key=f"hosts.{h.name}.components",
                hint=f"the lock has: {', '.join(sorted(lock.components))}",
            )
    if opts.on_gate_failure not in ("halt", "rollback"):
        raise ObsplanError(f"unknown action {opts.on_gate_failure!r}", key="--on-gate-failure", hint="halt or rollback")
    for flag, value in (("--soak", opts.soak), ("--interval", opts.interval), ("--initial-delay", opts.initial_delay)):
        numbers.seconds(flag, value)
    numbers.batch_spec(opts.batches)
    numbers.gate_expressions(opts.gates)
    numbers.prometheus_url(opts.prometheus)
    if opts.failure_limit < 0 or opts.canary < 0:
        raise ObsplanError("--failure-limit and --canary are 0 or more", key="--failure-limit", hint="e.g. 1")
    if opts.bundle is not None and not opts.bundle.is_file():
        raise ObsplanError(
            "the bundle for a rollout is one tar file (obsplan bundle LOCK -o FILE.tar)",
            file=str(opts.bundle),
            key="--bundle",
            hint="build it with -o FILE.tar",
        )
    if (opts.override_gates or opts.retry_failed) and not opts.resume:
        raise ObsplanError(
            "--override-gates and --retry-failed change how a rollout is resumed",
            key="--override-gates" if opts.override_gates else "--retry-failed",
            hint="use them with --resume",
        )
    if opts.facts_dir is not None and not opts.dry_run:
        raise ObsplanError(
            "--facts is for --dry-run (a rollout collects each host's facts itself)",
            key="--facts",
            hint="add --dry-run, or drop --facts",
        )
