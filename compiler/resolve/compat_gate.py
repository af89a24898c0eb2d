"""Which refusals stop a plan: mandatory rules always; overridable ones unless allowed (`--allow`, policy
`allow:`) or, for the compatibility matrix's own rules, unless `safety.compatibility_check` is false; then the
rule is reported as a warning on each component it names instead (advisory refusals are not compatibility
rules: `security_advisory_check` governs those)."""

from __future__ import annotations

import re

from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.plan.dag import Refusal


def blocking_refusals(
    refusals: list[Refusal], allow: set[str], matrix: MatrixFile, compatibility_check: bool, components: list[str]
) -> tuple[list[Refusal], dict[str, list[str]]]:
    """(refusals that block the plan, component → warnings for matrix rules let through)."""
    matrix_ids = {r.id for r in matrix.rules}
    blocking: list[Refusal] = []
    warnings: dict[str, list[str]] = {}
    for x in refusals:
        if x.severity == "mandatory":
            blocking.append(x)
        elif x.rule in allow:
            continue
        elif not compatibility_check and x.rule in matrix_ids:
            named = [c for c in components if re.search(rf"\b{re.escape(c)}\b", x.message)] or components
            for c in named:
                warnings.setdefault(c, []).append(f"compatibility_check is off, not refused: [{x.rule}] {x.message}")
        else:
            blocking.append(x)
    return blocking, warnings
