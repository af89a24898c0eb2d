"""From resolved from/to versions to an ordered, reasoned upgrade DAG (networkx).

Edges are declared, never derived from source order: hops of one component (2.48.1 → 2.55.1 → 3.14.0),
phase order (exporters → core → logs → dashboards by default, from the policy) and matrix requirements
(Alertmanager before Prometheus 3). Ties break on (phase, component, version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from obsplan.errors import ObsplanError
from obsplan.lockfile import Reason
from obsplan.versions import Version, VersionRange

from .config_matrix import MatrixFile, Rule


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
    component: str,
    current: Version | None,
    target: Version,
    usable: list[Version],
    matrix: MatrixFile,
    refusals: list[Refusal],
) -> list[Hop]:
    """The chain of moves from current to target, inserting every hop the matrix requires."""
    if current is not None and current == target:
        return []
    rules = [r for r in matrix.rules if r.component == component]
    points: list[Version] = [target]
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
    hops: list[Hop] = []
    prev = current
    for point in points:
        hop = Hop(component, prev, point)
        if point != target:
            why = next(r for r in rules if r.kind == "required_hop" and r.via_line == point.line())
            hop.reasons.append(Reason(code="required_hop", detail=f"{why.id}: {why.reason}"))
        for rule in rules:
            if rule.kind == "rollback_floor" and rule.matches_to(point) and rule.floor:
                hop.rollback_floor = Version.parse(rule.floor)
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
        hops.append(hop)
        prev = point
    return hops


def check_rules(
    paths: dict[str, ComponentPath],
    targets: dict[str, Version],
    matrix: MatrixFile,
    allow: set[str],
    refusals: list[Refusal],
    warnings: dict[str, list[str]],
    pinned_floor_check: dict[str, Version | None],
) -> list[tuple[str, str]]:
    """Check cross-component and gated rules; return extra DAG edges (before_step_id, after_step_id)."""
    edges: list[tuple[str, str]] = []
    for rule in matrix.rules:
        if rule.kind == "requires" and rule.component in targets and rule.requires:
            path = paths[rule.component]
            crossing = next(
                (
                    h
                    for h in path.hops
                    if rule.matches_to(h.to_version) and (h.from_version is None or not rule.matches_to(h.from_version))
                ),
                None,
            )
            if crossing is None:
                continue
            other = rule.requires.component
            need = VersionRange.parse(rule.requires.version)
            if other not in targets:
                warnings.setdefault(rule.component, []).append(
                    f"{rule.id}: {other} is not managed here; make sure it is {need} ({rule.reason})"
                )
                continue
            if not need.contains(targets[other]):
                refusals.append(
                    Refusal(
                        rule.id,
                        rule.severity,
                        f"{rule.component} {crossing.to_version} needs {other} {need}, "
                        f"but {other} is planned at {targets[other]}",
                        f"let {other} move to a version {need}",
                    )
                )
                continue
            other_hops = paths[other].hops
            if other_hops:
                edges.append((other_hops[-1].id, crossing.id))
                crossing.reasons.append(
                    Reason(code="requires", detail=f"{rule.id}: {other} {need} first ({rule.reason})")
                )
        elif rule.kind == "move_together":
            present = [c for c in rule.components if c in targets]
            for a, b in zip(present, present[1:], strict=False):
                la, lb = targets[a].line(), targets[b].line()
                if la != lb and not _capped(b, targets[a], matrix):
                    refusals.append(
                        Refusal(
                            rule.id,
                            rule.severity,
                            f"{a} ({targets[a]}) and {b} ({targets[b]}) must stay on one release line",
                            f"give {a} and {b} the same strategy or range",
                        )
                    )
                elif la != lb:
                    warnings.setdefault(b, []).append(
                        f"{rule.id}: {b} stays at {targets[b]} while {a} moves to {targets[a]}: "
                        + _cap_reason(b, matrix)
                    )
                if paths[a].hops and paths[b].hops:
                    edges.append((paths[a].hops[-1].id, paths[b].hops[0].id))
        elif rule.kind == "rollback_floor" and rule.component in targets and rule.floor:
            cur = pinned_floor_check.get(rule.component)
            tgt = targets[rule.component]
            floor = Version.parse(rule.floor)
            if cur is not None and rule.matches_to(cur) and tgt < floor:
                refusals.append(
                    Refusal(
                        rule.id,
                        rule.severity,
                        f"{rule.component} {cur} cannot go back to {tgt}: below the floor {floor} ({rule.reason})",
                        f"pin {floor} or newer",
                    )
                )
        elif rule.kind == "breaking" and rule.gate and rule.component in paths and rule.id not in allow:
            for hop in paths[rule.component].hops:
                if rule in hop.breaking_rules:
                    refusals.append(
                        Refusal(
                            rule.id,
                            rule.severity,
                            f"{hop.component} {hop.from_version} → {hop.to_version}: {rule.reason}",
                            rule.hint,
                        )
                    )
    return edges


def _capped(component: str, leader: Version, matrix: MatrixFile) -> bool:
    return any(
        r.kind == "max_version"
        and r.component == component
        and r.versions
        and VersionRange.parse(r.versions).contains(leader)
        for r in matrix.rules
    )


def _cap_reason(component: str, matrix: MatrixFile) -> str:
    rule = next(r for r in matrix.rules if r.kind == "max_version" and r.component == component)
    return f"{rule.reason}" + (f"; {rule.hint}" if rule.hint else "")


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
