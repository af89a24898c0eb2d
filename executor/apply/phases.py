"""`apply --phase P`: refuse, before anything changes, when P's steps require steps of earlier phases that the
host has not done yet, naming those phases (exit 1; run them first). Read-only: host facts only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obsplan.lock.lockfile import Lock, Step

if TYPE_CHECKING:
    from obsplan.executor.host.layout import Layout


def done_on_host(step: Step, chain: list[Step], layout: Layout) -> bool:
    """The host's `current` link is at the step's target or a later version of the component's chain."""
    path = [chain[0].from_version] + [s.to_version for s in chain]
    host = layout.current_version(step.component)
    return host is not None and host in path and path.index(host) >= chain.index(step) + 1


def _requirements(step: Step, chains: dict[str, list[Step]], by_id: dict[str, Step]) -> list[Step]:
    """Every step `step` needs first: its `requires` and its component's earlier steps, transitively."""
    seen: dict[str, Step] = {}
    todo = [step]
    while todo:
        s = todo.pop()
        chain = chains[s.component]
        deps = [by_id[d] for d in s.requires if d in by_id] + chain[: chain.index(s)]
        for d in deps:
            if d.id not in seen:
                seen[d.id] = d
                todo.append(d)
    return list(seen.values())


def unfinished_earlier(lock: Lock, phase: str, chains: dict[str, list[Step]], layout: Layout) -> dict[str, list[str]]:
    """Phase → ids of the not-yet-done steps of other phases that the steps of `phase` require."""
    by_id = {s.id: s for s in lock.plan.steps}
    out: dict[str, list[str]] = {}
    for s in (s for s in lock.plan.steps if s.phase == phase):
        for d in _requirements(s, chains, by_id):
            if d.phase != phase and not done_on_host(d, chains[d.component], layout):
                out.setdefault(d.phase, [])
                if d.id not in out[d.phase]:
                    out[d.phase].append(d.id)
    order = {p: i for i, p in enumerate(lock.plan.phases)}
    return {p: sorted(ids) for p, ids in sorted(out.items(), key=lambda kv: order.get(kv[0], len(order)))}
