"""The intelligence stage: per step, the breaking entries of upstream changelogs (and the risk they raise), and
per component, the advisories that affect its from-state, target or intermediate hops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from obsplan.compiler.config.policy import PolicyFile
from obsplan.compiler.intel.advisories import AdvisoryDB
from obsplan.compiler.intel.breaking_changes import Changelog
from obsplan.compiler.intel.step_risk import StepIntel, advisories_for, changelogs_for, fetch_changelogs, step_intel
from obsplan.compiler.plan.dag import ComponentPath, Refusal
from obsplan.compiler.resolve.resolve_stage import Resolved
from obsplan.compiler.sources.changelog_source import ChangelogFetcher
from obsplan.compiler.sources.releases import candidates

from obsplan.lock.lockfile import AdvisoryEntry


@dataclass
class Findings:
    intel: dict[str, StepIntel]  # step id → breaking entries, reasons, risk raise
    advisories: dict[str, list[AdvisoryEntry]] = field(default_factory=dict)  # component → lock entries
    refusals: list[Refusal] = field(default_factory=list)  # targets an advisory affects


@dataclass(frozen=True)
class IntelSources:
    snapshot_changelogs: dict[str, Any] = field(default_factory=dict)  # as parsed into the embedded snapshot
    fetcher: ChangelogFetcher | None = None  # upstream CHANGELOG files, fetched now
    advisories: AdvisoryDB | None = None


async def find_intel(
    paths: dict[str, ComponentPath],
    resolved: dict[str, Resolved],
    policy: PolicyFile,
    src: IntelSources,
    allow: set[str],
) -> Findings:
    detect = policy.safety.breaking_change_detection
    live = await _live_changelogs(paths, resolved, src.fetcher) if detect and src.fetcher is not None else {}
    intel: dict[str, StepIntel] = {}
    for name, path in paths.items():
        r = resolved[name]
        logs = (
            changelogs_for(name, src.snapshot_changelogs, r.data, r.defn.tag_prefix, live.get(name)) if detect else []
        )
        known = sorted(candidates(r.data, tag_prefix=r.defn.tag_prefix)) if r.data else []
        for hop in path.hops:  # detection off: no changelog read, so no breaking entries and no risk raised
            intel[hop.id] = step_intel(hop, logs, known) if detect else StepIntel()
    findings = Findings(intel)
    if src.advisories is not None:
        for name, path in paths.items():
            r = resolved[name]
            entries, reasons = advisories_for(
                src.advisories, name, path.hops, r.current, r.target.version, allow, findings.refusals
            )
            findings.advisories[name] = entries
            for sid, rs in reasons.items():
                intel[sid].reasons.extend(rs)
    return findings


async def _live_changelogs(
    paths: dict[str, ComponentPath], resolved: dict[str, Resolved], fetcher: ChangelogFetcher
) -> dict[str, Changelog | None]:
    """The CHANGELOG files of every component that moves, fetched concurrently."""
    moving = sorted(n for n, p in paths.items() if p.hops)
    parsed = await asyncio.gather(*(fetch_changelogs(fetcher, n, resolved[n].defn.github_repo) for n in moving))
    return dict(zip(moving, parsed, strict=True))
