"""The compiler's one entry point: validated inputs + release sources + a clock → a sealed lock.

No host is touched: the only I/O is through the injected release sources, checksum, changelog and OSV fetchers.
`compile_lock` runs the stages in order; each stage is a function of its own module, tested directly:

specs (specs.py) → sources (fetch.py) → from-state (fromstate.py) → resolve (targets.py, osv_scope.py)
→ plan (plan_graph.py) → intelligence (findings.py) → artifacts (artifacts.py) → lock (lock_build.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from obsplan.lockfile import Lock, Plan

from .advisories import AdvisoryDB
from .advisory_scan import advisory_scan
from .artifacts import ArtifactSources, collect_artifacts
from .catalog import host_settings
from .changelog_source import ChangelogFetcher
from .checksums import ChecksumFetcher
from .compat_gate import blocking_refusals
from .fetch import fetch_releases
from .findings import IntelSources, find_intel
from .fromstate import from_states
from .grafana_com import GrafanaComSource
from .inputs import Inputs
from .known_checksums import ChecksumBook, FolderLock
from .lock_build import build_steps, component_locks, phase_aliases, seal_lock
from .options import Options
from .osv_api import OsvClient
from .osv_scope import with_osv_records
from .plan_graph import plan_graph
from .planner import Refusal
from .releases import ReleaseSource
from .specs import load_specs
from .targets import ResolveContext, candidate_pools, resolve_targets


@dataclass
class Services:
    """Where the compiler's facts come from (all but the release sources and checksums optional)."""

    sources: list[ReleaseSource]
    checksums: ChecksumFetcher
    changelogs: dict[str, Any] = field(default_factory=dict)  # the embedded snapshot's parsed changelogs
    advisories: AdvisoryDB | None = None
    osv: OsvClient | None = None
    changelog_fetcher: ChangelogFetcher | None = None
    book: ChecksumBook | None = None
    promoted: FolderLock | None = None


@dataclass
class CompileResult:
    lock: Lock
    refusals: list[Refusal]


async def compile_lock(inputs: Inputs, opts: Options, previous: Lock | None, svc: Services) -> CompileResult:
    """The stages in order; the refusals that block the plan come back beside the lock (the caller decides)."""
    specs = load_specs(inputs, opts.environment)
    releases = await fetch_releases(specs.repos(), svc.sources)
    states = from_states(specs, inputs, previous, opts.facts)
    pools = candidate_pools(specs, releases, inputs, opts.now.date())
    advisories, osv_failures = await with_osv_records(svc.osv, svc.advisories, states, pools, inputs.matrix)
    ctx = ResolveContext(inputs, opts, specs, releases, states, previous, advisories, osv_failures, svc.promoted)
    resolved, promote_refusals = resolve_targets(ctx, pools)
    allow = set(opts.allow) | set(inputs.policy.allow)
    planned = plan_graph(resolved, inputs, allow)
    intel_src = IntelSources(svc.changelogs, svc.changelog_fetcher, advisories)
    findings = await find_intel(planned.paths, resolved, inputs.policy, intel_src, allow)
    downloads = next((x for x in svc.sources if isinstance(x, GrafanaComSource)), None)
    promoted_lock = svc.promoted.lock if svc.promoted else None
    art_src = ArtifactSources(svc.checksums, previous, promoted_lock, svc.book, downloads)
    artifacts = await collect_artifacts(planned.hops(), resolved, specs.platforms, art_src)

    steps = build_steps(planned, resolved, findings, artifacts, inputs)
    refusals = promote_refusals + planned.refusals + findings.refusals
    safety = inputs.policy.safety
    blocking, compat = blocking_refusals(refusals, allow, inputs.matrix, safety.compatibility_check, sorted(resolved))
    warnings = {n: planned.warnings.get(n, []) + compat.get(n, []) for n in resolved}
    components = component_locks(resolved, artifacts, findings, warnings, specs.env)
    steps = host_settings(components, steps)
    lock = seal_lock(
        opts,
        inputs,
        specs.platforms,
        components,
        Plan(phases=planned.phases, steps=steps, phase_aliases=phase_aliases(inputs.policy, planned.phases)),
        svc.promoted,
        advisory_scan(inputs.policy, svc.advisories, svc.osv is not None, opts.offline),
    )
    return CompileResult(lock, blocking)
