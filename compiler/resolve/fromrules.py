"""Which host versions a step may start from when the host is not where the plan assumed (apply-time binding).

The executor cannot evaluate the matrix, so each step carries the from-versions it must refuse: the `from`
range of every required hop into its target (the hop would be skipped), the range above a rollback floor the
target is below (data written by the newer version), and everything above the target (a downgrade) unless
the component is pinned.
"""

from __future__ import annotations

from obsplan.compiler.config.matrix import MatrixFile

from obsplan.kernel.version_types import RangeValue
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import FromRefusal


def refuse_from(component: str, to_version: Version, pinned: bool, matrix: MatrixFile) -> list[FromRefusal]:
    out: list[FromRefusal] = []
    for rule in matrix.rules:
        if rule.component != component:
            continue
        if rule.kind == "required_hop" and rule.from_ and rule.matches_to(to_version):
            out.append(
                FromRefusal(
                    rule=rule.id,
                    versions=rule.from_,
                    reason=f"must pass through {rule.via_line}.x first: {rule.reason}",
                )
            )
        if rule.kind == "rollback_floor" and rule.floor and rule.to and to_version < rule.floor:
            out.append(
                FromRefusal(
                    rule=rule.id, versions=rule.to, reason=f"below the rollback floor {rule.floor}: {rule.reason}"
                )
            )
    if not pinned:
        out.append(
            FromRefusal(
                rule="no_downgrade",
                versions=RangeValue.above(to_version),
                reason="a downgrade is planned only for a pinned component",
            )
        )
    return out
