"""The plan stage: each component's chain of hops, the cross-component rules, no-downgrade, and the ordered DAG
(phases from the policy, then any other phase a component names, alphabetically)."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.plan.cross_rules import check_rules
from obsplan.compiler.plan.dag import ComponentPath, Hop, Refusal, build_dag, plan_hops
from obsplan.compiler.resolve.resolve_stage import Resolved


@dataclass
class Planned:
    phases: list[str]
    paths: dict[str, ComponentPath]
    graph: nx.DiGraph
    refusals: list[Refusal]
    warnings: dict[str, list[str]]  # component → warnings from the matrix rules

    def hops(self) -> dict[str, Hop]:
        return {h.id: h for p in self.paths.values() for h in p.hops}


def plan_graph(resolved: dict[str, Resolved], inputs: Inputs, allow: set[str]) -> Planned:
    phases = plan_phases(inputs, resolved)
    paths: dict[str, ComponentPath] = {}
    refusals: list[Refusal] = []
    for name, r in resolved.items():
        hops, refused = plan_hops(name, r.current, r.target.version, sorted(r.cands.usable), inputs.matrix)
        paths[name] = ComponentPath(name, phase_of(name, r, inputs), hops)
        refusals += refused
    targets = {n: r.target.version for n, r in resolved.items()}
    rules = check_rules(paths, targets, {n: r.current for n, r in resolved.items()}, inputs.matrix, allow)
    for hop in (h for p in paths.values() for h in p.hops):
        hop.reasons += rules.reasons.get(hop.id, [])
    refusals += rules.refusals + no_downgrade(resolved)
    return Planned(phases, paths, build_dag(paths, phases, rules.edges), refusals, rules.warnings)


def no_downgrade(resolved: dict[str, Resolved]) -> list[Refusal]:
    """Only a pinned component may move back."""
    return [
        Refusal("no-downgrade", "mandatory", f"{r.name} would move back to {r.target.version}")
        for r in resolved.values()
        if r.strategy != "pinned" and r.current and r.target.version < r.current
    ]


def phase_of(name: str, r: Resolved, inputs: Inputs) -> str:
    """The entry's phase, else the policy phase that lists the component, else the definition's."""
    if r.spec.phase:
        named = [p.name for p in inputs.policy.phases if r.spec.phase in (p.name, *p.aliases)]
        return named[0] if named else r.spec.phase
    for p in inputs.policy.phases:
        if name in p.components:
            return p.name
    return r.defn.phase or "exporters"


def plan_phases(inputs: Inputs, resolved: dict[str, Resolved]) -> list[str]:
    declared = [p.name for p in inputs.policy.phases]
    extra = sorted({phase_of(n, r, inputs) for n, r in resolved.items()} - set(declared))
    return declared + extra
