"""What a reviewer has to decide about a lock, gathered before the report's tables: changes, high-risk and
security steps, steps pending approval, refused or accepted rules, manual work, and warnings stated once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from obsplan.lock.lockfile import AdvisoryEntry, ComponentLock, Lock, Step

# A decision list in the summary names at most this many items, then says how many more there are, so the
# summary stays short whatever the size of the lock (it is never truncated).
SUMMARY_ITEMS = 12
_VERSION_RUN = re.compile(r"(?:[0-9][\w.+-]*, ){11,}[0-9][\w.+-]*")


def anchor(step_id: str) -> str:
    """The HTML anchor of a step's details (stable: derived from the step id)."""
    return "step-" + re.sub(r"[^a-z0-9]+", "-", step_id.lower()).strip("-")


def abbreviate(text: str, keep: int = 4) -> str:
    """Shorten long comma-separated version lists ("11.0.1, 11.0.2, … 176 more …, 13.0.1")."""

    def short(m: re.Match[str]) -> str:
        items = m.group(0).split(", ")
        return ", ".join(items[:keep]) + f", … {len(items) - keep - 1} more …, " + items[-1]

    return _VERSION_RUN.sub(short, text)


@dataclass(frozen=True)
class WarningGroup:
    """One warning sentence, stated once, with every component it applies to."""

    ref: str
    text: str
    components: list[str]


@dataclass(frozen=True)
class ManualItem:
    text: str
    steps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    total: int
    changing: list[tuple[str, str | None, str]]
    steps: int
    high_risk: list[Step]
    security: list[tuple[Step, list[str]]]
    still_affected: list[tuple[str, AdvisoryEntry]]
    pending: list[Step]
    refused: list[str]
    accepted: list[str]
    manual: list[ManualItem]
    warnings: list[WarningGroup]
    warning_refs: dict[str, list[str]]


def summarize(lock: Lock, refused: list[str], accepted: list[str]) -> Summary:
    steps = lock.plan.steps
    groups, refs = group_warnings(lock.components)
    affected = [(n, a) for n, c in lock.components.items() for a in c.advisories if a.affects_target]
    accepted = accepted + [f"{a.id} (still affects {n} {lock.components[n].version})" for n, a in affected]
    return Summary(
        total=len(lock.components),
        changing=[(n, c.current, c.version) for n, c in lock.components.items() if c.current != c.version],
        steps=len(steps),
        high_risk=[s for s in steps if s.risk == "high"],
        security=[(s, _details(s, "security_fix")) for s in steps if s.priority == "security"],
        still_affected=affected,
        pending=[s for s in steps if s.approval is None],
        refused=refused,
        accepted=accepted,
        manual=manual_work(lock),
        warnings=groups,
        warning_refs=refs,
    )


def _details(step: Step, code: str) -> list[str]:
    return [r.detail for r in step.reasons if r.code == code]


HOST_SETTINGS_SOURCE = (
    "`obsplan apply` takes them from the running installation (its unit's or program's environment and "
    "`--config.my-cnf` file, else the exporter's default `~/.my.cnf`) and refuses this component's steps, the "
    "others going ahead, when there is none"
)


def manual_work(lock: Lock) -> list[ManualItem]:
    """What a person has to do or check by hand before or while applying the plan."""
    items: list[ManualItem] = []
    for s in lock.plan.steps:
        for detail in _details(s, "curated_breaking"):
            items.append(ManualItem(f"breaking change {detail}", [s.id]))
        if _details(s, "data_format_change") and s.rollback_floor:
            items.append(
                ManualItem(f"one-way data format change: after this step rollback only to ≥ {s.rollback_floor}", [s.id])
            )
    for c in sorted({s.component for s in lock.plan.steps if s.settings_from_host}):
        ids = [s.id for s in lock.plan.steps if s.component == c and s.settings_from_host]
        keys = ", ".join(
            sorted({f"runtime.{k}" for s in lock.plan.steps if s.component == c for k in s.settings_from_host})
        )
        items.append(ManualItem(f"{c}: {keys} not in versions.yaml: {HOST_SETTINGS_SOURCE}", ids))
    unread = [s.id for s in lock.plan.steps if _details(s, "changelog_unavailable")]
    if unread:
        items.append(ManualItem("no upstream CHANGELOG for the range: read the release notes by hand", unread))
    missing = sorted(
        {p for c in lock.components.values() for p, a in c.artifacts.items() if a.sha256 is None}
        | {p for s in lock.plan.steps for p, a in s.artifacts.items() if a.sha256 is None}
    )
    if missing:
        names = [n for n, c in lock.components.items() if any(a.sha256 is None for a in c.artifacts.values())]
        items.append(
            ManualItem(
                f"no upstream sha256 for {len(names)} component(s) on {', '.join(missing)}: `obsplan apply` refuses "
                "them until `obsplan plan` is run online (or `--allow-unverified`)"
            )
        )
    return items


def group_warnings(components: dict[str, ComponentLock]) -> tuple[list[WarningGroup], dict[str, list[str]]]:
    """Warnings that say the same thing up to the component's own version are stated once."""
    texts: dict[str, list[str]] = {}
    for name, c in components.items():
        for w in c.warnings:
            texts.setdefault(w.replace(c.version, "‹target›"), []).append(f"{name} {c.version}")
    groups = [WarningGroup(f"W{i}", abbreviate(t), names) for i, (t, names) in enumerate(texts.items(), 1)]
    refs: dict[str, list[str]] = {}
    for g in groups:
        for label in g.components:
            refs.setdefault(label.split(" ")[0], []).append(g.ref)
    return groups, refs


def breaking_by_version(step: Step, limit: int) -> tuple[str, list[tuple[str, list[str]]], int]:
    """A step's changelog breaking entries: the changelog they come from, at most `limit` entries grouped by
    version, and how many were left out."""
    groups: list[tuple[str, list[str]]] = []
    for b in step.breaking_changes[:limit]:
        text = b.text if len(b.text) <= 160 else b.text[:159] + "…"
        if not groups or groups[-1][0] != b.version:
            groups.append((b.version, []))
        groups[-1][1].append(text)
    source = step.breaking_changes[0].source.split(":")[0] if step.breaking_changes else ""
    return source, groups, max(0, len(step.breaking_changes) - limit)
