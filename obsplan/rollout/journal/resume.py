"""`--resume`: continue a halted or killed rollout with the decisions it was started with.

A halt is a decision, not an interruption. The resumed rollout re-uses the journalled gates (expressions,
Prometheus, soak, interval, initial delay, failure limit, on-failure action), batches, canaries, host
selection and per-host components. Only options given explicitly on the command line are compared with the
journal (a default never counts); one that contradicts it is bad input (exit 2) unless `--override-gates`,
which is journalled (the `overrides` option, a `gates_overridden` event) and shown by `--status`. A rollout
halted by failed hosts is resumed only with `--retry-failed` (which applies them again); hosts that failed
within `--failure-limit` in a batch that passed stay as they are without it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from obsplan.kernel.clock import now_iso
from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Lock
from obsplan.rollout.journal.rollouts_db import Journal

if TYPE_CHECKING:
    from obsplan.rollout.orchestrator import RolloutOptions

RESUMED = {  # RolloutOptions field → its command-line flag
    "gates": "--gate",
    "prometheus": "--prometheus",
    "soak": "--soak",
    "interval": "--interval",
    "initial_delay": "--initial-delay",
    "failure_limit": "--failure-limit",
    "on_gate_failure": "--on-gate-failure",
    "canary": "--canary",
    "batches": "--batches",
    "canary_hosts": "--canary-hosts",
    "limit": "--limit",
}
FAILED = ("failed", "refused", "unreachable", "rollback_failed")


def previous(journal: Journal, lock: Lock) -> dict[str, Any]:
    """The newest rollout, when it is unfinished and of this lock."""
    prev = journal.rollout()
    if prev is None or prev["status"] == "done":
        raise ObsplanError(
            "there is no unfinished rollout to resume",
            key="--resume",
            hint=f"journal: {journal.path}; start a new rollout without --resume",
        )
    if prev["lock_sha256"] != lock.content_sha256:
        raise ObsplanError(
            f"rollout {prev['id']} was of another lock ({prev['lock_path']})",
            key="--resume",
            hint="resume with the same LOCK, or start a new rollout",
        )
    return prev


def merged(opts: RolloutOptions, prev: dict[str, Any]) -> tuple[RolloutOptions, dict[str, list[Any]]]:
    """The journalled options, with the explicitly given ones that differ (refused unless --override-gates);
    returns the options to run with and the overrides {field: [journalled, given]}."""
    journalled = prev["options"]
    changes: dict[str, Any] = {}
    overrides: dict[str, list[Any]] = {}
    for name, flag in RESUMED.items():
        old = journalled.get(name, getattr(opts, name))
        new = getattr(opts, name)
        if name in opts.explicit and _norm(new) != _norm(old):
            overrides[flag] = [old, new]
        else:
            changes[name] = old
    if overrides and not opts.override_gates:
        said = "; ".join(f"{flag} {_show(new)} (journalled: {_show(old)})" for flag, (old, new) in overrides.items())
        raise ObsplanError(
            f"rollout {prev['id']} was started with other settings: {said}",
            key=next(iter(overrides)),
            hint="drop the flag to resume as journalled, or add --override-gates to change it (journalled)",
        )
    return dataclasses.replace(opts, **changes), overrides


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _show(v: Any) -> str:
    if isinstance(v, list | tuple):
        return "[" + ", ".join(str(x) for x in v) + "]" if v else "none"
    return "none" if v is None else str(v)


def record_overrides(journal: Journal, prev: dict[str, Any], overrides: dict[str, list[Any]]) -> None:
    options = dict(prev["options"])
    for field, flag in RESUMED.items():
        if flag in overrides:
            options[field] = overrides[flag][1]
    options["overrides"] = [*options.get("overrides", []), {"at": now_iso(), "changed": overrides}]
    journal.update_options(prev["id"], options)


def last_halt(journal: Journal, rid: str) -> dict[str, Any] | None:
    halts = [e for e in journal.events(rid) if e.get("event") == "rollout_halted"]
    return halts[-1] if halts else None


def failed_hosts(journal: Journal, rid: str) -> list[str]:
    last: dict[str, str] = {}
    for r in journal.host_results(rid):
        last[r["host"]] = r["status"]
    return [h for h, s in last.items() if s in FAILED]


def check_failed(journal: Journal, prev: dict[str, Any], retry_failed: bool) -> set[str]:
    """The failed hosts to leave alone (empty with --retry-failed); a halt by failed hosts needs --retry-failed."""
    failed = failed_hosts(journal, prev["id"])
    if retry_failed:
        return set()
    halt = last_halt(journal, prev["id"]) if prev["status"] == "halted" else None
    if halt is not None and halt.get("cause") == "hosts":
        raise ObsplanError(
            f"rollout {prev['id']} halted because host(s) failed: {', '.join(failed) or halt.get('reason')}",
            key="--resume",
            hint="add --retry-failed to apply them again (after fixing them), or start a new rollout",
        )
    return set(failed)
