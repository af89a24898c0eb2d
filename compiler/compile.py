"""The compiler's one entry point: validated inputs + release sources + a clock → a sealed lock.

No host is touched: the only I/O is through the injected release sources, checksum, changelog and OSV fetchers.
`compile_lock` runs the stages in order; each stage is a function of its own module, tested directly:

specs (specs.py) → sources (fetch.py) → from-state (fromstate.py) → resolve (targets.py, osv_scope.py)
→ plan (plan_graph.py) → intelligence (findings.py) → artifacts (artifacts.py) → lock (lock_build.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from obsplan.compiler.config.catalog import host_settings
from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.plan_options import Options
from obsplan.compiler.config.specs_stage import load_specs
from obsplan.compiler.intel.advisories import AdvisoryDB
from obsplan.compiler.intel.advisory_scan import advisory_scan
from obsplan.compiler.intel.intel_stage import IntelSources, find_intel
from obsplan.compiler.intel.osv_api import OsvClient
from obsplan.compiler.intel.osv_scope import with_osv_records
from obsplan.compiler.plan.artifacts_stage import ArtifactSources, collect_artifacts
from obsplan.compiler.plan.dag import Refusal
from obsplan.compiler.plan.lock_stage import build_steps, component_locks, phase_aliases, seal_lock
from obsplan.compiler.plan.plan_stage import plan_graph
from obsplan.compiler.resolve.compat_gate import blocking_refusals
from obsplan.compiler.resolve.fromstate import from_states
from obsplan.compiler.resolve.resolve_stage import ResolveContext, candidate_pools, resolve_targets
from obsplan.compiler.sources.changelog_source import ChangelogFetcher
from obsplan.compiler.sources.grafana_com import GrafanaComSource
from obsplan.compiler.sources.known_checksums import ChecksumBook, FolderLock
from obsplan.compiler.sources.releases import ReleaseSource
from obsplan.compiler.sources.sources_stage import fetch_releases
from obsplan.compiler.sources.upstream_checksums import ChecksumFetcher

from obsplan.lock.lockfile import Lock, Plan


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


@dataclass(repr=False)  # asyncio.run reprs its finished task (and so this result) when it restores SIGINT
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
