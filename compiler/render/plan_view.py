"""A stable, reviewable view of a compiled plan for snapshot tests (the `obsplan_plan` pytest fixture).

Only what a reviewer decides on: versions, strategies, steps with their order, risk, approval, reasons and
artifact URLs, warnings, advisories and refusals. Left out on purpose: hashes (content, inputs, artifacts: an
offline plan has no upstream sha256, so the missing-checksum warning is left out too), the obsplan version and
the dates of the release data, which change without the plan changing.
"""

from __future__ import annotations

from typing import Any

import yaml
from obsplan.compiler.render.plan_report import component_risks
from obsplan.compiler.sources.upstream_checksums import MISSING_CHECKSUM

from obsplan.lock.lockfile import Lock, Step


def _step(s: Step) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "phase": s.phase,
        "from": s.from_version,
        "to": s.to_version,
        "risk": s.risk,
        "approval": s.approval or "pending",
        "after": list(s.requires),
        "why": [f"{r.code}: {r.detail}" for r in s.reasons],
    }
    if s.priority != "normal":
        out["priority"] = s.priority
    if s.rollback_floor:
        out["rollback_floor"] = s.rollback_floor
    if s.breaking_changes:
        out["breaking_changelog_entries"] = len(s.breaking_changes)
    out["artifacts"] = {p: a.url for p, a in sorted(s.artifacts.items())}
    return out


def _warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if not w.startswith(MISSING_CHECKSUM)]


def plan_view(lock: Lock, refused: list[str] | None = None) -> dict[str, Any]:
    risks = component_risks(lock)
    components = {
        name: {
            "current": c.current,
            "target": c.version,
            "strategy": c.strategy,
            "source": c.source.kind,
            "risk": risks[name],
            **({"warnings": warnings} if (warnings := _warnings(c.warnings)) else {}),
            **(
                {"advisories": [f"{a.id}: {'affects target' if a.affects_target else 'fixed'}" for a in c.advisories]}
                if c.advisories
                else {}
            ),
        }
        for name, c in lock.components.items()
    }
    view: dict[str, Any] = {
        "environment": lock.environment,
        "platforms": list(lock.platforms),
        "components": components,
        "steps": [_step(s) for s in lock.plan.steps],
    }
    if refused:
        view["refused"] = list(refused)
    return view


def plan_text(view: dict[str, Any]) -> str:
    """The view as YAML: one fact per line, so a snapshot diff reads like a plan diff."""
    return yaml.safe_dump(view, sort_keys=False, allow_unicode=True, width=10_000, default_flow_style=False)
