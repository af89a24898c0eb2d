"""Why a step is risky: breaking entries from upstream changelogs and security advisories, per step.

Changelogs come pre-parsed in the embedded snapshot (so planning offline still reports them) plus GitHub
release bodies from live release data; advisories are OSV records from the policy's directories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from obsplan.compiler.intel.advisories import AdvisoryDB, Assessment
from obsplan.compiler.intel.breaking_changes import (
    BreakingChanges,
    BreakingPolicy,
    Changelog,
    Entry,
    breaking_between,
    load_breaking_policy,
    merge_changelogs,
)
from obsplan.compiler.intel.changelog_parse import parse_changelog, parse_release_body
from obsplan.compiler.plan.dag import Hop, Refusal
from obsplan.compiler.sources.changelog_source import ChangelogFetcher
from obsplan.compiler.sources.releases import ReleaseData, candidates

from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import AdvisoryEntry, BreakingChange, Reason


@dataclass
class StepIntel:
    breaking: list[BreakingChange] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    raise_to: str | None = None


@cache
def _breaking_policy() -> BreakingPolicy:
    return load_breaking_policy()


def changelogs_for(
    component: str,
    snapshot_changelogs: dict[str, Any],
    data: ReleaseData | None,
    tag_prefix: str = "",
    live: Changelog | None = None,
) -> list[Changelog]:
    """The component's changelog sources: the CHANGELOG files fetched now (`live`), else as parsed into the
    snapshot; curated entries; GitHub release bodies."""
    policy = _breaking_policy()
    out: list[Changelog] = []
    stored = snapshot_changelogs.get(component)
    if live:
        out.append(live)
    elif stored:
        out.append({v: [Entry(**e) for e in entries] for v, entries in stored.items()})
    out.append(policy.curated(component))
    sources = policy.components.get(component)
    if data is not None and sources and sources.release_bodies_from:
        start = sources.release_bodies_from.version
        for v, rel in candidates(data, tag_prefix=tag_prefix).items():
            if v >= start and rel.body.strip():
                out.append(parse_release_body(rel.body, v, source=f"GitHub release {rel.tag}"))
    return [c for c in out if c]


def step_intel(hop: Hop, changelogs: list[Changelog], known: list[Version]) -> StepIntel:
    intel = StepIntel()
    if hop.from_version is None:
        return intel
    result: BreakingChanges = breaking_between(changelogs, hop.from_version, hop.to_version, known)
    intel.breaking = [e.lock_entry() for e in result.entries]
    cov = result.coverage
    if cov.status == "unavailable":
        intel.reasons.append(
            Reason(
                code="changelog_unavailable",
                detail=f"CHANGELOG missing or unparseable for this range ({cov.reason}); risk not lowered",
            )
        )
        intel.raise_to = "medium"
    elif cov.status == "partial":
        intel.reasons.append(
            Reason(code="changelog_partial", detail=f"no CHANGELOG section for {', '.join(cov.missing)}")
        )
    if result.entries:
        versions = sorted({e.version.version for e in result.entries})
        intel.reasons.append(
            Reason(
                code="changelog_breaking",
                detail=f"{len(result.entries)} breaking entries in {', '.join(str(v) for v in versions)}",
            )
        )
        intel.raise_to = "medium"  # low means no breaking entries at all
    return intel


def advisories_for(
    db: AdvisoryDB,
    component: str,
    hops: list[Hop],
    current: Version | None,
    target: Version,
    allow: set[str],
    refusals: list[Refusal],
) -> tuple[list[AdvisoryEntry], dict[str, list[Reason]]]:
    """Lock entries for a component's advisories, and extra reasons per step id."""
    inter = [h.to_version for h in hops[:-1]]
    found: list[Assessment] = db.assess(component, current, target, inter)
    entries: list[AdvisoryEntry] = []
    reasons: dict[str, list[Reason]] = {}
    for a in found:
        if not (a.affects_current or a.affects_target or a.affected_hops):
            continue
        entries.append(AdvisoryEntry.model_validate(a.model_dump()))  # the same fields, checked as the lock's
        if hops and a.affects_current and a.affects_target is False:
            reasons.setdefault(hops[-1].id, []).append(
                Reason(code="security_fix", detail=f"fixes {a.id} ({', '.join(a.aliases[:2])})")
            )
        for hop in hops:
            if str(hop.to_version) in a.affected_hops:
                reasons.setdefault(hop.id, []).append(
                    Reason(code="advisory_on_hop", detail=f"intermediate {hop.to_version} is affected by {a.id}")
                )
        if a.affects_target and a.id not in allow:
            refusals.append(
                Refusal(
                    a.id,
                    "overridable",
                    f"{component} target {target} is affected by {a.id}"
                    + (f" (fixed in {a.fixed_in})" if a.fixed_in else ""),
                    "pick a fixed version, or exclude the affected one",
                )
            )
    return entries, reasons


def security_bypass(
    db: AdvisoryDB, component: str, current: Version | None, waiting: dict[Version, str]
) -> dict[Version, str]:
    """Too-young versions that fix an advisory affecting the current version: they skip the release-age wait
    (as Renovate and Dependabot do for security updates). Returns version → advisory id."""
    if current is None or not waiting:
        return {}
    out: dict[Version, str] = {}
    vulns = db.for_component(component)
    for v in sorted(waiting):
        for vuln in vulns:
            if db.affects(component, vuln, current) is True and db.affects(component, vuln, v) is False:
                out[v] = vuln.id
                break
    return out


async def fetch_changelogs(fetcher: ChangelogFetcher, component: str, repo: str) -> Changelog | None:
    """The component's CHANGELOG files from upstream, parsed and merged; None unless every file was fetched."""
    sources = _breaking_policy().components.get(component)
    if not sources or not sources.changelogs:
        return None
    parsed = []
    for name in sources.changelogs:
        text = await fetcher.fetch(repo, name)
        if text is None:
            return None
        parsed.append(parse_changelog(text, source=f"{repo} {name}"))
    return merge_changelogs(parsed)
