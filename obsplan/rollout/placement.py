"""Which components each host gets, and where each host goes in the rollout (canary, middle, last batch), with
the reason for each, as `--dry-run` shows it.

Components: the inventory's `components:` when given (new components only this way), else the lock's
components the host has (installed, linked or served, from its `obsplan facts`), else, without facts,
undecided (None: decided from the host's facts at run time).

Placement: the gates' Prometheus host (its address is the `--prometheus` URL's host, or it runs the lock's
`prometheus`) and the other monitoring hosts (alertmanager, grafana) are never default canaries while other
hosts exist, and go in the last batch unless `--canary-hosts` names them. Default canaries are the other hosts
with the fewest known components (inventory order breaks ties; unknown counts last).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.hostfacts import HostFacts
from obsplan.rollout.batches import Batch, plan_batches
from obsplan.rollout.inventory.hosts import Host

MONITORING = ("prometheus", "alertmanager", "grafana")


def host_has(facts: HostFacts, component: str) -> bool:
    c = facts.components.get(component)
    return c is not None and bool(c.installed or c.linked or c.served)


def decide_components(host: Host, lock_components: list[str], facts: HostFacts | None) -> list[str] | None:
    if host.components is not None:
        return list(host.components)
    if facts is None:
        return None
    return [c for c in lock_components if host_has(facts, c)]


def _why_components(host: Host, comps: list[str] | None) -> str:
    if host.components is not None:
        return "components named by the inventory"
    if comps is None:
        return "components decided from the host's facts at run time"
    return "components from the host's facts: " + (", ".join(comps) or "none of the lock's")


def default_prometheus(hosts: list[Host], comps: dict[str, list[str] | None], port: int | None) -> str | None:
    """The gates' Prometheus when neither --prometheus nor the inventory names one: the first host known
    (inventory `components:` or facts) to run the lock's prometheus; never a host merely listed first."""
    if port is None:
        return None
    for h in hosts:
        if "prometheus" in (comps.get(h.name) or []):
            return f"http://{h.address}:{port}"
    return None


@dataclass(frozen=True)
class Placement:
    batches: list[Batch]
    why: dict[str, str]  # host → where it goes and why (plus how its components were decided)


def _monitoring(host: Host, comps: list[str] | None, prom_host: str | None) -> tuple[int, str]:
    """(2: serves the gates' Prometheus, 1: another monitoring host, 0: neither; the reason)."""
    if prom_host is not None and host.address == prom_host:
        return 2, "serves the gates' Prometheus"
    runs = [c for c in MONITORING if c in (comps or [])]
    if "prometheus" in runs and prom_host is None:
        return 2, "runs prometheus (the gates' Prometheus)"
    if runs:
        return 1, f"runs {', '.join(runs)}"
    return 0, ""


def _named(spec: str, hosts: list[Host]) -> list[str]:
    """`NAME[,NAME]` or `KEY=VALUE` (hosts whose label KEY is VALUE), in inventory order."""
    if "=" in spec:
        key, _, value = spec.partition("=")
        found = [h.name for h in hosts if h.labels.get(key.strip()) == value.strip()]
    else:
        wanted = [n.strip() for n in spec.split(",") if n.strip()]
        names = {h.name for h in hosts}
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ObsplanError(
                f"--canary-hosts names unknown host(s): {', '.join(unknown)}",
                key="--canary-hosts",
                hint=f"hosts of this rollout: {', '.join(h.name for h in hosts)}",
            )
        found = [h.name for h in hosts if h.name in wanted]
    if not found:
        raise ObsplanError(
            f"--canary-hosts {spec} matches no host", key="--canary-hosts", hint="NAME[,NAME] or KEY=VALUE"
        )
    return found


def place(
    hosts: list[Host],
    comps: dict[str, list[str] | None],
    prometheus: str | None,
    canary: int,
    spec: str,
    canary_hosts: str | None = None,
) -> Placement:
    prom_host = urlsplit(prometheus).hostname if prometheus else None
    tier = {h.name: _monitoring(h, comps.get(h.name), prom_host) for h in hosts}
    index = {h.name: i for i, h in enumerate(hosts)}
    named = _named(canary_hosts, hosts) if canary_hosts else []
    if named:
        canaries, canary = named, len(named)
    else:
        lowest = min((tier[h.name][0] for h in hosts), default=0)
        pool = [h.name for h in hosts if tier[h.name][0] == lowest]
        count = {n: len(comps[n] or []) if comps.get(n) is not None else 10**6 for n in pool}
        canaries = sorted(pool, key=lambda n: (count[n], index[n]))[: min(canary, len(hosts))]
    rest = sorted((h.name for h in hosts if h.name not in canaries), key=lambda n: (tier[n][0], index[n]))
    batches = plan_batches(canaries + rest, canary, spec)
    batches = _monitoring_last(batches, {n for n, (t, _) in tier.items() if t and n not in named})
    why = {}
    for b in batches:
        for n in b.hosts:
            where = _where(b, n in named, tier[n], comps.get(n))
            why[n] = f"{where}; {_why_components(next(h for h in hosts if h.name == n), comps.get(n))}"
    return Placement(batches, why)


def _monitoring_last(batches: list[Batch], monitoring: set[str]) -> list[Batch]:
    """Monitoring hosts not named as canaries move into the last batch (an emptied batch is dropped)."""
    if len(batches) < 2 or not monitoring:
        return batches
    moved = [n for b in batches[:-1] for n in b.hosts if n in monitoring]
    kept = [Batch(b.index, b.name, tuple(n for n in b.hosts if n not in monitoring)) for b in batches[:-1]]
    last = batches[-1]
    shaped = [b for b in kept if b.hosts] + [Batch(last.index, last.name, tuple(moved) + last.hosts)]
    return [Batch(i, b.name, b.hosts) for i, b in enumerate(shaped)]


def _where(b: Batch, named: bool, tier: tuple[int, str], comps: list[str] | None) -> str:
    if named:
        return "canary: named by --canary-hosts"
    if b.name == "canary":
        known = str(len(comps)) if comps is not None else "unknown until run time"
        among = "among hosts not running monitoring" if not tier[0] else f"({tier[1]}: no host without monitoring)"
        return f"canary: fewest components ({known}) {among}"
    if tier[0]:
        return f"{b.name} (last): {tier[1]}"
    return f"{b.name}: inventory order"
