"""From resolved from/to versions to an ordered, reasoned upgrade DAG (networkx).

Edges are declared, never derived from source order: hops of one component (2.48.1 → 2.55.1 → 3.14.0),
phase order (exporters → core → logs → dashboards by default, from the policy) and matrix requirements
(Alertmanager before Prometheus 3). Ties break on (phase, component, version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
from obsplan.compiler.config.matrix import MatrixFile, Rule

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Reason


@dataclass
class Refusal:
    rule: str
    severity: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        hint = f" (fix: {self.hint})" if self.hint else ""
        how = "" if self.severity == "mandatory" else f"; override with --allow {self.rule}"
        return f"[{self.rule}] {self.message}{hint}{how}"


@dataclass
class Hop:
    component: str
    from_version: Version | None
    to_version: Version
    reasons: list[Reason] = field(default_factory=list)
    rollback_floor: Version | None = None
    breaking_rules: list[Rule] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.component}@{self.to_version}"


@dataclass
class ComponentPath:
    component: str
    phase: str
    hops: list[Hop]


def plan_hops(
    component: str, current: Version | None, target: Version, usable: list[Version], matrix: MatrixFile
) -> tuple[list[Hop], list[Refusal]]:
    """The chain of moves from current to target, inserting every hop the matrix requires; and the refusals of
    required hops no usable release can serve."""
    if current is not None and current == target:
        return [], []
    rules = [r for r in matrix.rules if r.component == component]
    points, refusals = _hop_points(component, current, target, usable, rules)
    hops: list[Hop] = []
    prev = current
    for point in points:
        hops.append(_hop(component, prev, point, target, rules))
        prev = point
    return hops, refusals


def _hop_points(
    component: str, current: Version | None, target: Version, usable: list[Version], rules: list[Rule]
) -> tuple[list[Version], list[Refusal]]:
    """The versions the chain stops at (the target last): each required hop's newest usable release is inserted
    before the first point it lies below, until no rule asks for another."""
    points: list[Version] = [target]
    refusals: list[Refusal] = []
    changed = True
    while changed:
        changed = False
        prev: Version | None = current
        for i, point in enumerate(points):
            for rule in rules:
                if rule.kind != "required_hop" or prev is None:
                    continue
                if rule.matches_from(prev) and rule.matches_to(point) and prev < point:
                    line = [v for v in usable if v.line() == rule.via_line and prev < v < point]
                    if not line:
                        refusals.append(
                            Refusal(
                                rule.id,
                                "mandatory",
                                f"{component} {prev} → {point} must pass through {rule.via_line}.x, "
                                f"but no usable {rule.via_line}.x release is known",
                                "refresh release data or remove the exclusion",
                            )
                        )
                        continue
                    points.insert(i, max(line))
                    changed = True
                    break
            if changed:
                break
            prev = point
    return points, refusals


def _hop(component: str, prev: Version | None, point: Version, target: Version, rules: list[Rule]) -> Hop:
    """One move, with the matrix's reasons: required hop, rollback floor (data format change), curated breaking."""
    hop = Hop(component, prev, point)
    if point != target:
        why = next(r for r in rules if r.kind == "required_hop" and r.via_line == point.line())
        hop.reasons.append(Reason(code="required_hop", detail=f"{why.id}: {why.reason}"))
    for rule in rules:
        if rule.kind == "rollback_floor" and rule.matches_to(point) and rule.floor:
            hop.rollback_floor = rule.floor.version
            if prev is None or not rule.matches_to(prev):
                hop.reasons.append(
                    Reason(
                        code="data_format_change",
                        detail=f"{rule.id}: after this step rollback is possible only to "
                        f">= {rule.floor} ({rule.reason})",
                    )
                )
        if rule.kind == "breaking" and prev is not None and rule.matches_from(prev) and rule.matches_to(point):
            hop.breaking_rules.append(rule)
            hop.reasons.append(
                Reason(
                    code="curated_breaking",
                    detail=f"{rule.id}: {rule.reason}" + (f"; {rule.hint}" if rule.hint else ""),
                )
            )
    return hop


def risk_of(hop: Hop) -> tuple[str, list[Reason]]:
    """low: patch bump; medium: minor bump (or any bump of a 0.x component); high: major bump, curated
    breaking change, required hop or data-format change."""
    reasons: list[Reason] = []
    f, t = hop.from_version, hop.to_version
    level = "low"
    if f is None:
        reasons.append(Reason(code="install", detail=f"fresh install of {t}"))
        level = "medium"
    elif t < f:
        reasons.append(Reason(code="downgrade", detail=f"{f} → {t} is a downgrade"))
        level = "high"
    elif t.major != f.major:
        reasons.append(Reason(code="major_bump", detail=f"major version {f.major} → {t.major}"))
        level = "high"
    elif t.minor != f.minor:
        pre1 = " (pre-1.0: minor releases may break)" if t.major == 0 else ""
        reasons.append(Reason(code="minor_bump", detail=f"minor version {f.line()} → {t.line()}{pre1}"))
        level = "medium"
    else:
        reasons.append(Reason(code="patch_bump", detail=f"patch release {f} → {t}"))
    codes = {r.code for r in hop.reasons}
    if codes & {"required_hop", "curated_breaking", "data_format_change"}:
        level = "high"
    return level, reasons


def build_dag(paths: dict[str, ComponentPath], phases: list[str], extra_edges: list[tuple[str, str]]) -> nx.DiGraph:
    g: nx.DiGraph = nx.DiGraph()
    order = {p: i for i, p in enumerate(phases)}
    for path in paths.values():
        for i, hop in enumerate(path.hops):
            g.add_node(hop.id, phase=path.phase, component=path.component, version=hop.to_version)
            if i:
                g.add_edge(path.hops[i - 1].id, hop.id, why="hop")
    by_phase: dict[str, list[ComponentPath]] = {}
    for path in paths.values():
        if path.hops:
            by_phase.setdefault(path.phase, []).append(path)
    active = sorted(by_phase, key=lambda p: order[p])
    for earlier, later in zip(active, active[1:], strict=False):
        for a in by_phase[earlier]:
            for b in by_phase[later]:
                g.add_edge(a.hops[-1].id, b.hops[0].id, why="phase")
    for before, after in extra_edges:
        g.add_edge(before, after, why="matrix")
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return g
    names = " → ".join([e[0] for e in cycle] + [cycle[0][0]])
    raise ObsplanError(
        f"the plan's ordering has a cycle: {names}",
        key="phases",
        hint="the policy's phase order contradicts a matrix requirement; reorder phases",
    )


def ordered_steps(g: nx.DiGraph, phases: list[str]) -> list[str]:
    order = {p: i for i, p in enumerate(phases)}

    def key(node: str) -> tuple[int, str, Version]:
        data = g.nodes[node]
        return (order[data["phase"]], data["component"], data["version"])

    return list(nx.lexicographical_topological_sort(g, key=key))
