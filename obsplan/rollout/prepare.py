"""Before the first batch: each host's facts (read from `--facts DIR` for a dry run, or collected over SSH with
`obsplan facts` for the hosts whose inventory entry names no components), each host's components, the gates'
Prometheus, and the batches with the reason for each host's place (obsplan.rollout.placement)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.hostfacts import HostFacts, load_facts
from obsplan.lock.lockfile import Lock
from obsplan.rollout.batches import Batch
from obsplan.rollout.inventory.hosts import Host, Inventory
from obsplan.rollout.placement import decide_components, default_prometheus, place
from obsplan.rollout.runner import BatchRequest, WorkerSession, run_batch

FactsMap = dict[str, HostFacts | None]


@dataclass(frozen=True)
class Prepared:
    hosts: list[Host]  # components decided (None: only in a dry run without facts)
    batches: list[Batch]
    why: dict[str, str]
    prometheus: str | None
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # the facts pass's facts (JSON), by host


def lock_order(lock: Lock) -> list[str]:
    """The lock's components in plan order (then the rest, sorted)."""
    return list(dict.fromkeys([s.component for s in lock.plan.steps] + sorted(lock.components)))


def facts_from_dir(directory: Path, hosts: list[Host]) -> FactsMap:
    """DIR/HOST.json for each host (a host without a file: None)."""
    if not directory.is_dir():
        raise ObsplanError("--facts is a directory of HOST.json files", file=str(directory), key="--facts")
    out: FactsMap = {}
    for h in hosts:
        path = directory / f"{h.name}.json"
        out[h.name] = load_facts(path) if path.is_file() else None
    return out


def collect_facts(
    req: BatchRequest,
    hosts: list[Host],
    on_progress: Callable[[str, str], None] | None = None,
    session: WorkerSession | None = None,
) -> tuple[FactsMap, dict[str, str]]:
    """`obsplan facts` on every host over SSH (one connection each, in parallel): (facts, errors by host)."""
    facts: FactsMap = {h.name: None for h in hosts}
    errors: dict[str, str] = {}
    if not hosts:
        return facts, errors
    for name, result in run_batch(req, hosts, on_progress=on_progress, session=session):
        if result.get("status") == "ok" and isinstance(result.get("facts"), dict):
            try:
                facts[name] = HostFacts.model_validate(result["facts"])
                continue
            except ValueError as exc:
                result = {"reason": f"the host's facts are not valid: {str(exc)[:300]}"}
        errors[name] = str(result.get("reason") or "no facts")
    return facts, errors


def prepare(
    lock: Lock,
    inv: Inventory,
    hosts: list[Host],
    facts: FactsMap,
    prometheus: str | None,
    shape: tuple[int, str, str | None],
) -> Prepared:
    """shape: (canary count, --batches, --canary-hosts)."""
    order = lock_order(lock)
    comps = {h.name: decide_components(h, order, facts.get(h.name)) for h in hosts}
    port = lock.components["prometheus"].runtime.port if "prometheus" in lock.components else None
    prom = prometheus or inv.prometheus or default_prometheus(hosts, comps, port)
    placement = place(hosts, comps, prom, *shape)
    decided = [h.model_copy(update={"components": comps[h.name]}) for h in hosts]
    seen = {n: f.model_dump(mode="json") for n, f in facts.items() if f is not None}
    return Prepared(decided, placement.batches, placement.why, prom, seen)


def resumed(hosts: list[Host], journalled: dict[str, list[str] | None], batches: list[dict]) -> Prepared:
    """The hosts' components and the batches as the resumed rollout journalled them."""
    decided = [h.model_copy(update={"components": journalled.get(h.name, h.components)}) for h in hosts]
    return Prepared(decided, [Batch(b["index"], b["name"], tuple(b["hosts"])) for b in batches], {}, None)
