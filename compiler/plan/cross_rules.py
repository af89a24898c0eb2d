"""The matrix rules that look across a plan rather than along one component's chain: `requires` (another
component first), `move_together` (one release line), `rollback_floor` (no going back below it) and gated
`breaking` rules. Each check returns what it found; nothing it is given is changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from obsplan.compiler.config.matrix import MatrixFile, Rule
from obsplan.compiler.plan.dag import ComponentPath, Refusal

from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Reason


@dataclass
class RuleOutcome:
    edges: list[tuple[str, str]] = field(default_factory=list)  # extra DAG edges (before step id, after step id)
    refusals: list[Refusal] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)  # component → warnings
    reasons: dict[str, list[Reason]] = field(default_factory=dict)  # step id → reasons to add

    def add(self, other: RuleOutcome) -> None:
        self.edges += other.edges
        self.refusals += other.refusals
        for name, ws in other.warnings.items():
            self.warnings.setdefault(name, []).extend(ws)
        for sid, rs in other.reasons.items():
            self.reasons.setdefault(sid, []).extend(rs)


def check_rules(
    paths: dict[str, ComponentPath],
    targets: dict[str, Version],
    currents: dict[str, Version | None],
    matrix: MatrixFile,
    allow: set[str],
) -> RuleOutcome:
    """Check cross-component and gated rules, in the matrix's order."""
    out = RuleOutcome()
    for rule in matrix.rules:
        if rule.kind == "requires" and rule.component in targets and rule.requires:
            out.add(_requires(rule, paths, targets))
        elif rule.kind == "move_together":
            out.add(_move_together(rule, paths, targets, matrix))
        elif rule.kind == "rollback_floor" and rule.component in targets and rule.floor:
            out.add(_floor(rule, currents.get(rule.component), targets[rule.component]))
        elif rule.kind == "breaking" and rule.gate and rule.component in paths and rule.id not in allow:
            out.add(_gate(rule, paths[rule.component]))
    return out


def _requires(rule: Rule, paths: dict[str, ComponentPath], targets: dict[str, Version]) -> RuleOutcome:
    """The hop that enters the rule's `to` range needs the other component in range first."""
    assert rule.component is not None and rule.requires is not None
    out = RuleOutcome()
    crossing = next(
        (
            h
            for h in paths[rule.component].hops
            if rule.matches_to(h.to_version) and (h.from_version is None or not rule.matches_to(h.from_version))
        ),
        None,
    )
    if crossing is None:
        return out
    other = rule.requires.component
    need = rule.requires.version.range
    if other not in targets:
        out.warnings[rule.component] = [
            f"{rule.id}: {other} is not managed here; make sure it is {need} ({rule.reason})"
        ]
    elif not need.contains(targets[other]):
        out.refusals.append(
            Refusal(
                rule.id,
                rule.severity,
                f"{rule.component} {crossing.to_version} needs {other} {need}, "
                f"but {other} is planned at {targets[other]}",
                f"let {other} move to a version {need}",
            )
        )
    elif paths[other].hops:
        out.edges.append((paths[other].hops[-1].id, crossing.id))
        out.reasons[crossing.id] = [Reason(code="requires", detail=f"{rule.id}: {other} {need} first ({rule.reason})")]
    return out


def _move_together(
    rule: Rule, paths: dict[str, ComponentPath], targets: dict[str, Version], matrix: MatrixFile
) -> RuleOutcome:
    """Neighbours in the group stay on one release line (unless a `max_version` cap holds one back: a warning)."""
    out = RuleOutcome()
    present = [c for c in rule.components if c in targets]
    for a, b in zip(present, present[1:], strict=False):
        la, lb = targets[a].line(), targets[b].line()
        if la != lb and not _capped(b, targets[a], matrix):
            out.refusals.append(
                Refusal(
                    rule.id,
                    rule.severity,
                    f"{a} ({targets[a]}) and {b} ({targets[b]}) must stay on one release line",
                    f"give {a} and {b} the same strategy or range",
                )
            )
        elif la != lb:
            out.warnings.setdefault(b, []).append(
                f"{rule.id}: {b} stays at {targets[b]} while {a} moves to {targets[a]}: " + _cap_reason(b, matrix)
            )
        if paths[a].hops and paths[b].hops:
            out.edges.append((paths[a].hops[-1].id, paths[b].hops[0].id))
    return out


def _floor(rule: Rule, current: Version | None, target: Version) -> RuleOutcome:
    """An installed version past the floor's data format cannot go back below the floor."""
    assert rule.floor is not None
    floor = rule.floor.version
    if current is None or not rule.matches_to(current) or target >= floor:
        return RuleOutcome()
    message = f"{rule.component} {current} cannot go back to {target}: below the floor {floor} ({rule.reason})"
    return RuleOutcome(refusals=[Refusal(rule.id, rule.severity, message, f"pin {floor} or newer")])


def _gate(rule: Rule, path: ComponentPath) -> RuleOutcome:
    """A gated curated breaking change refuses each hop it applies to (until allowed)."""
    refusals = [
        Refusal(rule.id, rule.severity, f"{h.component} {h.from_version} → {h.to_version}: {rule.reason}", rule.hint)
        for h in path.hops
        if rule in h.breaking_rules
    ]
    return RuleOutcome(refusals=refusals)


def _capped(component: str, leader: Version, matrix: MatrixFile) -> bool:
    return any(
        r.kind == "max_version" and r.component == component and r.versions is not None and r.versions.contains(leader)
        for r in matrix.rules
    )


def _cap_reason(component: str, matrix: MatrixFile) -> str:
    rule = next(r for r in matrix.rules if r.kind == "max_version" and r.component == component)
    return f"{rule.reason}" + (f"; {rule.hint}" if rule.hint else "")
