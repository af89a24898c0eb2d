"""Questions about a lock's plan that apply, approvals and binding share: per-component step chains."""

from __future__ import annotations

from obsplan.lock.lockfile import Lock, Step


def component_chains(lock: Lock) -> dict[str, list[Step]]:
    """Steps of each component ordered along the version chain (from → to), plan order breaking ties."""
    chains: dict[str, list[Step]] = {}
    for s in lock.plan.steps:
        chains.setdefault(s.component, []).append(s)
    for c, steps in chains.items():
        ordered: list[Step] = []
        remaining = list(steps)
        tos = {s.to_version for s in steps}
        heads = [s for s in remaining if s.from_version not in tos] or remaining[:1]
        cur: Step | None = heads[0]
        while cur is not None:
            ordered.append(cur)
            remaining.remove(cur)
            cur = next((s for s in remaining if s.from_version == ordered[-1].to_version), None)
        chains[c] = ordered + remaining
    return chains


def plan_path(chain: list[Step]) -> list[str | None]:
    """The versions a component goes through in the plan: the assumed from-state, then every step's target."""
    return [chain[0].from_version] + [s.to_version for s in chain] if chain else []


def step_deps(step: Step, chains: dict[str, list[Step]]) -> set[str]:
    """The steps `step` requires: its `requires` and the step before it in its component's chain."""
    chain = chains[step.component]
    idx = chain.index(step)
    return set(step.requires) | ({chain[idx - 1].id} if idx > 0 else set())
