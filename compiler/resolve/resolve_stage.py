"""The resolve stage: each component's target version, the from-state its plan starts at, the source of that
decision and the warnings it carries.

Release data decides when there is some (strategy, minimum release age, a security fix that skips the age);
without it, an explicit pin, then fallback_version, then the module manifest; `promote_from` overrides both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from obsplan.compiler.config.catalog import ComponentDef
from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.plan_options import Options
from obsplan.compiler.config.specs_stage import Specs
from obsplan.compiler.config.versions_file import ComponentSpec, Strategy
from obsplan.compiler.intel.advisories import AdvisoryDB
from obsplan.compiler.intel.step_risk import security_bypass
from obsplan.compiler.plan.dag import Refusal
from obsplan.compiler.resolve.fromstate import FromState, after_target
from obsplan.compiler.resolve.pick_target import Candidates, Target, choose, usable_candidates
from obsplan.compiler.resolve.promote import promoted_target
from obsplan.compiler.sources.known_checksums import FolderLock
from obsplan.compiler.sources.releases import Release, ReleaseData, candidates
from obsplan.compiler.sources.sources_stage import Fetched

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import ComponentLock, Lock, Reason, SourceInfo, SourceKind


@dataclass
class Resolved:
    name: str
    defn: ComponentDef
    spec: ComponentSpec
    strategy: Strategy
    current: Version | None
    data: ReleaseData | None
    cands: Candidates
    target: Target
    source: SourceInfo
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ResolveContext:
    """What every component's resolution reads."""

    inputs: Inputs
    opts: Options
    specs: Specs
    releases: dict[str, Fetched]  # repo → release data
    states: dict[str, FromState]
    previous: Lock | None = None
    advisories: AdvisoryDB | None = None
    osv_failures: dict[str, list[str]] = field(default_factory=dict)
    promoted: FolderLock | None = None


@dataclass
class _Choice:
    target: Target
    source: SourceInfo
    cands: Candidates
    current: Version | None


def candidate_pools(specs: Specs, releases: dict[str, Fetched], inputs: Inputs, today: date) -> dict[str, Candidates]:
    """The usable (and too-young) releases of each component that has release data."""
    out: dict[str, Candidates] = {}
    for name, (spec, _) in specs.entries.items():
        data = releases[specs.defs[name].github_repo][0]
        if data is not None:
            out[name] = usable_candidates(
                specs.defs[name],
                spec,
                data,
                platforms=specs.platforms,
                matrix=inputs.matrix,
                today=today,
                min_age_days=inputs.policy.minimum_release_age_days,
            )
    return out


def resolve_targets(ctx: ResolveContext, pools: dict[str, Candidates]) -> tuple[dict[str, Resolved], list[Refusal]]:
    """Every component resolved, in name order, and the `promote_from` refusals."""
    resolved: dict[str, Resolved] = {}
    refusals: list[Refusal] = []
    for name in sorted(ctx.specs.entries):
        resolved[name], refusal = _resolve(ctx, name, pools.get(name))
        refusals += [refusal] if refusal else []
    return resolved, refusals


def _resolve(ctx: ResolveContext, name: str, pool: Candidates | None) -> tuple[Resolved, Refusal | None]:
    spec, strategy = ctx.specs.entries[name]
    defn = ctx.specs.defs[name]
    data, failures = ctx.releases[defn.github_repo]
    prev = ctx.previous.components.get(name) if ctx.previous else None
    if data is None or pool is None:
        choice = _without_releases(ctx, name, failures, prev)
    else:
        choice = _from_releases(ctx, name, data, pool, prev)
    refusal = None
    if ctx.promoted is not None:
        got = promoted_target(name, spec, strategy, ctx.promoted, ctx.states[name].version, ctx.inputs.matrix)
        if isinstance(got, Refusal):
            refusal = got
        else:
            choice = _promoted(ctx, name, got, choice.cands, data, prev)
    choice.target.reasons += _waiting_reasons(choice.target.version, choice.cands)
    warnings = [f"release data: {failures}"] if failures and data is not None and not ctx.opts.offline else []
    warnings += choice.target.warnings  # "release data unavailable, using fallback_version 1.5.0"
    warnings += [f"release data: {w}" for w in (data.warnings if data is not None else [])]
    warnings += _later_warnings(ctx, name, choice.target.version)
    r = Resolved(name, defn, spec, strategy, choice.current, data, choice.cands, choice.target, choice.source, warnings)
    return r, refusal


def _from_releases(
    ctx: ResolveContext, name: str, data: ReleaseData, pool: Candidates, prev: ComponentLock | None
) -> _Choice:
    """The strategy's pick among the usable releases; a too-young release that fixes an advisory affecting the
    installed version is usable too."""
    defn, state = ctx.specs.defs[name], ctx.states[name]
    bypass = security_bypass(ctx.advisories, name, state.version, pool.waiting) if ctx.advisories else {}
    releases = candidates(data, tag_prefix=defn.tag_prefix) if bypass else {}
    cands = Candidates(
        usable={**pool.usable, **{v: releases[v] for v in bypass}},
        waiting={v: d for v, d in pool.waiting.items() if v not in bypass},
    )
    kept = prev.version_value if prev and ctx.opts.may_keep(name) else None
    target, current = _target_and_from(ctx, name, cands, prev, kept)
    source = SourceInfo(kind=data.source, as_of=data.as_of, detail=data.detail)
    if target.reasons[0].code == "kept_from_lock" and prev:
        source = prev.source
    if target.version in bypass:
        target.reasons.append(
            Reason(
                code="security_fix_skips_min_age",
                detail=f"{target.version} fixes {bypass[target.version]}: minimum_release_age_days does not apply",
            )
        )
    return _Choice(target, source, cands, current)


def _target_and_from(
    ctx: ResolveContext, name: str, cands: Candidates, prev: ComponentLock | None, kept: Version | None
) -> tuple[Target, Version | None]:
    """The target, and the from-state it is planned from: when the target moved away from the previous lock's,
    that target is assumed applied and the plan starts there (unless only no-downgrade would hold it there: then
    the config moved below it and the plan keeps the lock's own from-state)."""
    spec, strategy = ctx.specs.entries[name]
    defn, state = ctx.specs.defs[name], ctx.states[name]
    today, matrix, file = ctx.opts.now.date(), ctx.inputs.matrix, ctx.specs.file
    target = choose(
        defn, spec, strategy, cands, current=state.version, kept=kept, matrix=matrix, today=today, file=file
    )
    moved = after_target(state, prev, target.version)
    if moved is None:
        return target, state.version
    again = choose(defn, spec, strategy, cands, current=moved.version, kept=kept, matrix=matrix, today=today, file=file)
    if again.version == moved.version:
        return target, state.version
    return again, moved.version


def _without_releases(ctx: ResolveContext, name: str, failures: str, prev: ComponentLock | None) -> _Choice:
    """No release data at all: an explicit pin, then fallback_version, then the module manifest."""
    spec, strategy = ctx.specs.entries[name]
    options: list[tuple[Version | None, str, SourceKind, str]] = [
        (
            spec.version.version if spec.version and strategy == "pinned" else None,
            "pinned",
            "fallback_version",
            "pinned version",
        ),
        (
            spec.fallback_version.version if spec.fallback_version else None,
            "fallback_version",
            "fallback_version",
            "fallback_version",
        ),
        (
            ctx.inputs.module_versions.get(name),
            "module_manifest",
            "module_manifest",
            f"modules/{name}/module.yaml version",
        ),
    ]
    v, code, kind, what = next((o for o in options if o[0]), (None, "", "fallback_version", ""))
    if v is None:
        raise ObsplanError(
            f"no release data for {name} ({failures})",
            file=ctx.specs.file,
            key=f"components.{name}",
            hint="run online, set GITHUB_TOKEN, or add fallback_version",
            exit_code=EXIT_FAILED,
        )
    reason = Reason(code=code, detail=f"no release data, using {what} {v}: {failures}")
    target = Target(v, strategy, [reason], [f"release data unavailable, using {what} {v}"])
    moved = after_target(ctx.states[name], prev, v)
    return _Choice(
        target,
        SourceInfo(kind=kind, as_of=None, detail=failures),
        Candidates(usable={v: Release(tag=f"v{v}")}),
        moved.version if moved else ctx.states[name].version,
    )


def _promoted(
    ctx: ResolveContext,
    name: str,
    target: Target,
    cands: Candidates,
    data: ReleaseData | None,
    prev: ComponentLock | None,
) -> _Choice:
    """The promoted environment's version, planned from the from-state (or the previous target, when it moved)."""
    assert ctx.promoted is not None
    state = ctx.states[name]
    moved = after_target(state, prev, target.version)
    rels = candidates(data, tag_prefix=ctx.specs.defs[name].tag_prefix) if data is not None else {}
    usable = {target.version: rels.get(target.version) or Release(tag=f"v{target.version}"), **cands.usable}
    comp = ctx.promoted.lock.components[name]
    source = SourceInfo(kind="lock", as_of=comp.source.as_of, detail=f"promoted from {ctx.promoted.origin}")
    return _Choice(target, source, Candidates(usable, cands.waiting), moved.version if moved else state.version)


def _waiting_reasons(target: Version, cands: Candidates) -> list[Reason]:
    newer = {v: d for v, d in cands.waiting.items() if v > target}
    if not newer:
        return []
    v = max(newer)
    detail = f"{v} is newer but younger than minimum_release_age_days; eligible on {newer[v]}"
    return [Reason(code="min_age_not_met", detail=detail)]


def _later_warnings(ctx: ResolveContext, name: str, v: Version) -> list[str]:
    """Support ended for the target's line; the host facts' note; OSV queries that failed."""
    out: list[str] = []
    today = ctx.opts.now.date()
    for line in ctx.inputs.matrix.support.get(name, []):
        if line.line == v.line() and line.end and date.fromisoformat(line.end) < today:
            out.append(
                f"{name} {v.line()} support ended {line.end} (per the shipped support data); "
                "a newer line may exist: refresh release data"
            )
            break
    if ctx.opts.facts and name in ctx.opts.facts.notes:
        out.append(ctx.opts.facts.notes[name])
    return out + ctx.osv_failures.get(name, [])
