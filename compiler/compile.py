"""The compiler's one entry point: validated inputs + release sources + a clock → a sealed lock.

No host is touched: the only I/O is through the injected release sources and checksum fetcher.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from obsplan import __version__
from obsplan.errors import EXIT_FAILED, ObsplanError
from obsplan.hostfacts import FactsInput
from obsplan.lockfile import (
    FORMAT_VERSION,
    ArchiveLimits,
    Artifact,
    ComponentLock,
    HostPolicy,
    Lock,
    Plan,
    Reason,
    SourceInfo,
    SourceKind,
    Step,
)
from obsplan.versions import Version

from .advisories import AdvisoryDB
from .catalog import ComponentDef, builtin_definitions, make_artifact, require_settings, resolve_definition
from .changelog import Changelog
from .changelog_source import ChangelogFetcher
from .checksums import MISSING_CHECKSUM, ChecksumFetcher, parse_checksum_file, parse_sidecar
from .compat_gate import blocking_refusals
from .config_matrix import MatrixFile
from .config_policy import PolicyFile
from .config_versions import ComponentSpec, Strategy
from .fromrules import refuse_from
from .fromstate import FromState, after_target, initial_from_state, stated_text
from .grafana_com import GrafanaComSource, NotThisSource
from .inputs import Inputs
from .intelligence import (
    StepIntel,
    advisories_for,
    changelogs_for,
    fetch_changelogs,
    security_bypass,
    step_intel,
)
from .known_checksums import ChecksumBook, FolderLock
from .osv_api import OsvClient
from .planner import ComponentPath, Hop, Refusal, build_dag, check_rules, ordered_steps, plan_hops, risk_of
from .promote import promoted_target
from .releases import Release, ReleaseData, ReleaseSource, SourceUnavailable, candidates
from .resolve import Candidates, Target, choose, on_github, usable_candidates
from .soak import soak_seconds

CONCURRENCY = 8
_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass
class Options:
    environment: str
    now: datetime
    offline: bool = False
    upgrade: bool = False
    upgrade_packages: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()
    facts: FactsInput | None = None  # `plan --facts`: the host's versions beat every other from-state


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


@dataclass
class CompileResult:
    lock: Lock
    refusals: list[Refusal]


def effective_specs(inputs: Inputs, env: str) -> tuple[dict[str, tuple[ComponentSpec, Strategy]], list[str], bool]:
    """Merge base entries with the environment's overrides; decide each strategy.

    Each strategy is decided by `decide_strategy`.
    """
    vf = inputs.versions
    file = str(inputs.config_dir / "versions.yaml")
    if env not in vf.environments and env != "default":
        known = ", ".join(sorted(vf.environments)) or "none"
        raise ObsplanError(f"unknown environment {env!r}", file=file, key="environments", hint=f"use one of: {known}")
    espec = vf.environments.get(env)
    out: dict[str, tuple[ComponentSpec, Strategy]] = {}
    for name in espec.component_overrides if espec else {}:
        if name not in vf.components:
            raise ObsplanError(
                f"override for unknown component {name!r}",
                file=file,
                key=f"environments.{env}.component_overrides.{name}",
                hint="add it under components: first",
            )
    for name, base in vf.components.items():
        if espec and name in espec.disabled_components:
            continue
        override = espec.component_overrides.get(name) if espec else None
        merged = base.model_copy(update=override.model_dump(exclude_unset=True)) if override else base
        env_default = espec.default_strategy if espec else None
        strategy = decide_strategy(base, override, env_default, vf.global_.default_strategy)
        out[name] = (merged, strategy)
    platforms = (espec.platforms if espec and espec.platforms else None) or vf.global_.platforms
    offline = bool(espec.offline_mode) if espec and espec.offline_mode is not None else vf.global_.offline_mode
    return out, platforms, offline


def decide_strategy(
    base: ComponentSpec, override: ComponentSpec | None, env_default: Strategy | None, global_default: Strategy
) -> Strategy:
    """Precedence: the override's strategy > an override that sets `version` without a strategy (pinned: the
    environment holds that exact version, whatever the entry's strategy) > the entry's strategy > the
    environment's default_strategy > global.default_strategy."""
    if override and override.strategy:
        return override.strategy
    if override and override.version:
        return "pinned"
    return base.strategy or env_default or global_default


async def fetch_first(
    repo: str, sources: list[ReleaseSource], sem: asyncio.Semaphore
) -> tuple[ReleaseData | None, str]:
    failures: list[str] = []
    for src in sources:
        try:
            async with sem:
                return await src.fetch(repo), "; ".join(failures)
        except NotThisSource:
            continue
        except SourceUnavailable as exc:
            failures.append(str(exc))
    return None, "; ".join(failures)


async def compile_lock(
    inputs: Inputs,
    opts: Options,
    sources: list[ReleaseSource],
    checksums: ChecksumFetcher,
    previous: Lock | None,
    changelogs: dict[str, Any] | None = None,
    advisories: AdvisoryDB | None = None,
    osv: OsvClient | None = None,
    changelog_fetcher: ChangelogFetcher | None = None,
    book: ChecksumBook | None = None,
    promoted: FolderLock | None = None,
) -> CompileResult:
    file = str(inputs.config_dir / "versions.yaml")
    specs, platforms, _ = effective_specs(inputs, opts.environment)
    builtins = builtin_definitions()
    defs = {n: resolve_definition(n, s, builtins, file) for n, (s, _) in specs.items()}
    espec = inputs.versions.environments.get(opts.environment)
    today = opts.now.date()

    sem = asyncio.Semaphore(CONCURRENCY)
    repos = sorted({d.github_repo for d in defs.values()})
    fetched = await asyncio.gather(*(fetch_first(r, sources, sem) for r in repos))
    data_by_repo = dict(zip(repos, fetched, strict=True))

    for fname, platform in sorted(opts.facts.platforms.items()) if opts.facts else []:
        if platform not in platforms:
            raise ObsplanError(
                f"host facts {fname} are of a {platform} host, but the plan is for {', '.join(platforms)}",
                file=file,
                key="global.platforms",
                hint=f"add {platform} to platforms (or the environment's platforms)",
            )
    facts = opts.facts.versions if opts.facts else None
    states = {name: initial_from_state(name, inputs, espec, previous, facts) for name in specs}
    currents = {name: st.version for name, st in states.items()}
    cands_by_name: dict[str, Candidates] = {}
    for name, (spec, _) in specs.items():
        data = data_by_repo[defs[name].github_repo][0]
        if data is not None:
            cands_by_name[name] = usable_candidates(
                defs[name],
                spec,
                data,
                platforms=platforms,
                matrix=inputs.matrix,
                today=today,
                min_age_days=inputs.policy.minimum_release_age_days,
            )

    osv_failures: dict[str, list[str]] = {}
    if osv is not None:
        advisories = await _with_osv_records(osv, advisories, currents, cands_by_name, inputs)
        osv_failures = osv.failures

    resolved: dict[str, Resolved] = {}
    promote_refusals: list[Refusal] = []
    for name, (spec, strategy) in sorted(specs.items()):
        defn = defs[name]
        current = currents[name]
        data, failures = data_by_repo[defn.github_repo]
        kept = None
        prev_comp = previous.components.get(name) if previous else None
        if prev_comp and not opts.upgrade and name not in opts.upgrade_packages:
            kept = Version.parse(prev_comp.version)
        warnings = [f"release data: {failures}"] if failures and data is not None and not opts.offline else []
        if data is None:
            target, source = _last_resort(name, spec, strategy, inputs, failures, file)
            cands = Candidates(usable={target.version: Release(tag=f"v{target.version}")})
            moved = after_target(states[name], prev_comp, target.version)
            current = currents[name] = moved.version if moved else current
        else:
            cands = cands_by_name[name]
            bypass = security_bypass(advisories, name, current, cands.waiting) if advisories else {}
            for v in bypass:
                cands.usable[v] = candidates(data, tag_prefix=defn.tag_prefix)[v]
                del cands.waiting[v]
            target, current = _target_and_from(
                defn, spec, strategy, cands, states[name], prev_comp, kept, inputs.matrix, today, file
            )
            currents[name] = current
            source = SourceInfo(kind=data.source, as_of=data.as_of, detail=data.detail)
            if target.reasons[0].code == "kept_from_lock" and prev_comp:
                source = prev_comp.source
            if target.version in bypass:
                target.reasons.append(
                    Reason(
                        code="security_fix_skips_min_age",
                        detail=f"{target.version} fixes {bypass[target.version]}: "
                        "minimum_release_age_days does not apply",
                    )
                )
        if promoted is not None:
            got = promoted_target(name, spec, strategy, promoted, states[name].version, inputs.matrix)
            if isinstance(got, Refusal):
                promote_refusals.append(got)
            else:
                target, source = got, _promoted_source(promoted, name)
                moved = after_target(states[name], prev_comp, target.version)
                current = currents[name] = moved.version if moved else states[name].version
                rels = candidates(data, tag_prefix=defn.tag_prefix) if data is not None else {}
                cands.usable.setdefault(target.version, rels.get(target.version) or Release(tag=f"v{target.version}"))
        newer_waiting = {v: d for v, d in cands.waiting.items() if v > target.version}
        if newer_waiting:
            v = max(newer_waiting)
            target.reasons.append(
                Reason(
                    code="min_age_not_met",
                    detail=f"{v} is newer but younger than minimum_release_age_days; eligible on {newer_waiting[v]}",
                )
            )
        warnings += _eol_warnings(name, target.version, inputs, today)
        if opts.facts and name in opts.facts.notes:
            warnings.append(opts.facts.notes[name])
        warnings += osv_failures.get(name, [])
        resolved[name] = Resolved(name, defn, spec, strategy, current, data, cands, target, source, warnings)

    refusals: list[Refusal] = list(promote_refusals)
    phases = _phases(inputs, resolved)
    paths: dict[str, ComponentPath] = {}
    for name, r in resolved.items():
        usable = sorted(r.cands.usable)
        hops = plan_hops(name, r.current, r.target.version, usable, inputs.matrix, refusals)
        paths[name] = ComponentPath(name, _phase_of(name, r, inputs), hops)
    targets = {n: r.target.version for n, r in resolved.items()}
    warn_map: dict[str, list[str]] = {}
    allow = set(opts.allow) | set(inputs.policy.allow)
    extra = check_rules(
        paths,
        targets,
        inputs.matrix,
        allow,
        refusals,
        warn_map,
        {n: r.current for n, r in resolved.items()},
    )
    for name, ws in warn_map.items():
        resolved[name].warnings.extend(ws)
    for r in resolved.values():
        if r.strategy != "pinned" and r.current and r.target.version < r.current:
            refusals.append(Refusal("no-downgrade", "mandatory", f"{r.name} would move back to {r.target.version}"))
    graph = build_dag(paths, phases, extra)

    hop_by_id: dict[str, Hop] = {h.id: h for p in paths.values() for h in p.hops}
    intel: dict[str, StepIntel] = {}
    live: dict[str, Changelog | None] = {}
    if changelog_fetcher is not None and inputs.policy.safety.breaking_change_detection:
        moving = sorted(n for n, p in paths.items() if p.hops)
        parsed = await asyncio.gather(
            *(fetch_changelogs(changelog_fetcher, n, resolved[n].defn.github_repo) for n in moving)
        )
        live = dict(zip(moving, parsed, strict=True))
    for name, path in paths.items():
        r = resolved[name]
        logs = (
            changelogs_for(name, changelogs or {}, r.data, r.defn.tag_prefix, live.get(name))
            if inputs.policy.safety.breaking_change_detection
            else []
        )
        known_versions = sorted(candidates(r.data, tag_prefix=r.defn.tag_prefix)) if r.data else []
        for hop in path.hops:
            intel[hop.id] = step_intel(hop, logs, known_versions)
    advisory_entries: dict[str, list[dict[str, Any]]] = {}
    if advisories is not None:
        for name, path in paths.items():
            r = resolved[name]
            entries, extra_reasons = advisories_for(
                advisories, name, path.hops, r.current, r.target.version, allow, refusals
            )
            advisory_entries[name] = entries
            for sid, rs in extra_reasons.items():
                intel[sid].reasons.extend(rs)
    downloads = next((x for x in sources if isinstance(x, GrafanaComSource)), None)
    src = ArtifactSources(checksums, previous, promoted.lock if promoted else None, book, downloads)
    artifacts = await _artifacts(hop_by_id, resolved, platforms, src)

    steps: list[Step] = []
    for sid in ordered_steps(graph, phases):
        hop = hop_by_id[sid]
        level, base_reasons = risk_of(hop)
        r = resolved[hop.component]
        info = intel[sid]
        if info.raise_to and _RANK[info.raise_to] > _RANK[level]:
            level = info.raise_to
        reasons = (
            base_reasons + hop.reasons + info.reasons + (r.target.reasons if hop.to_version == r.target.version else [])
        )
        approval = _approval(sid, level, inputs)
        steps.append(
            Step(
                id=sid,
                component=hop.component,
                from_version=str(hop.from_version) if hop.from_version else None,
                to_version=str(hop.to_version),
                phase=graph.nodes[sid]["phase"],
                requires=sorted(graph.predecessors(sid)),
                risk=level,  # type: ignore[arg-type]
                reasons=reasons,
                artifacts=artifacts[(hop.component, hop.to_version)],
                rollback_floor=str(hop.rollback_floor) if hop.rollback_floor else None,
                breaking_changes=info.breaking,
                priority="security" if any(x.code == "security_fix" for x in reasons) else "normal",
                approval=approval,
                refuse_from=refuse_from(hop.component, hop.to_version, r.strategy == "pinned", inputs.matrix),
                soak_seconds=soak_seconds(inputs.policy.soak, hop.component, str(hop.from_version or "") or None),
            )
        )

    blocking, compat_warnings = blocking_refusals(
        refusals, allow, inputs.matrix, inputs.policy.safety.compatibility_check, sorted(resolved)
    )
    for name, ws in compat_warnings.items():
        resolved[name].warnings.extend(ws)
    components: dict[str, ComponentLock] = {}
    for name, r in sorted(resolved.items()):
        arts = artifacts.get((name, r.target.version)) or await _artifacts_for(r, r.target.version, platforms, src)
        missing = [p for p, a in arts.items() if a.sha256 is None]
        if missing:
            r.warnings.append(
                f"{MISSING_CHECKSUM} {r.target.version} on {', '.join(missing)}: "
                "apply will refuse it until a checksum is available (run plan online)"
            )
        components[name] = ComponentLock(
            version=str(r.target.version),
            current=str(r.current) if r.current else None,
            stated_current=stated_text(inputs.versions.environments.get(opts.environment), name),
            strategy=r.strategy,
            github_repo=r.defn.github_repo,
            source=r.source,
            artifacts=arts,
            runtime=r.defn.runtime,
            warnings=sorted(set(r.warnings)),
            advisories=advisory_entries.get(name, []),
        )
    require_settings(components, steps, file)
    lock = Lock(
        format_version=FORMAT_VERSION,
        obsplan_version=__version__,
        environment=opts.environment,
        platforms=platforms,
        inputs={
            **inputs.digests,
            **(opts.facts.digests if opts.facts else {}),
            **({f"promoted:{promoted.path.name}": promoted.lock.content_sha256} if promoted else {}),
        },
        components=components,
        plan=Plan(phases=phases, steps=steps),
        host_policy=host_policy(inputs.policy),
    ).sealed()
    return CompileResult(lock, blocking)


def _target_and_from(
    defn: ComponentDef,
    spec: ComponentSpec,
    strategy: Strategy,
    cands: Candidates,
    state: FromState,
    prev: ComponentLock | None,
    kept: Version | None,
    matrix: MatrixFile,
    today: date,
    file: str,
) -> tuple[Target, Version | None]:
    """The target, and the from-state it is planned from: when the target moved away from the previous lock's,
    that target is assumed applied and the plan starts there (unless only no-downgrade would hold it there: then
    the config moved below it and the plan keeps the lock's own from-state)."""
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


async def _with_osv_records(
    osv: OsvClient,
    advisories: AdvisoryDB | None,
    currents: dict[str, Version | None],
    cands_by_name: dict[str, Candidates],
    inputs: Inputs,
) -> AdvisoryDB:
    """Ask the OSV API about the versions a plan can touch: installed, newest usable, too-young ones, and the
    newest release of each required-hop line."""
    wanted: dict[str, set[Version]] = {}
    for name, current in currents.items():
        versions: set[Version] = {current} if current else set()
        cands = cands_by_name.get(name)
        if cands is not None:
            if cands.usable:
                versions.add(max(cands.usable))
            versions |= set(cands.waiting)
            for rule in inputs.matrix.rules:
                line = [
                    v
                    for v in cands.usable
                    if rule.kind == "required_hop" and rule.component == name and v.line() == rule.via_line
                ]
                if line:
                    versions.add(max(line))
        wanted[name] = versions
    records = await osv.records(wanted)
    base = advisories or AdvisoryDB([], osv.mappings)
    return base.with_records(records)


def _approval(step_id: str, risk: str, inputs: Inputs) -> str | None:
    """Why a step may run unattended (`obsplan apply --auto`), or None when it waits for approval."""
    if step_id in inputs.policy.approvals:
        return "listed in the policy's approvals"
    auto = inputs.policy.auto_upgrade
    if auto.enabled and risk in auto.allowed_risk_levels:
        return f"auto_upgrade allows {risk} risk"
    return None


def _promoted_source(promoted: FolderLock, name: str) -> SourceInfo:
    comp = promoted.lock.components[name]
    return SourceInfo(kind="lock", as_of=comp.source.as_of, detail=f"promoted from {promoted.origin}")


def _last_resort(
    name: str, spec: ComponentSpec, strategy: Strategy, inputs: Inputs, failures: str, file: str
) -> tuple[Target, SourceInfo]:
    """No release data at all: an explicit pin, then fallback_version, then the module manifest."""
    options: list[tuple[str | None, str, SourceKind, str]] = [
        (spec.version if strategy == "pinned" else None, "pinned", "fallback_version", "pinned version"),
        (spec.fallback_version, "fallback_version", "fallback_version", "fallback_version"),
        (inputs.module_versions.get(name), "module_manifest", "module_manifest", f"modules/{name}/module.yaml version"),
    ]
    for raw, code, kind, what in options:
        if raw:
            v = Version.parse(raw)
            reason = Reason(code=code, detail=f"no release data, using {what} {v}: {failures}")
            warning = f"release data unavailable, using {what} {v}"
            return Target(v, strategy, [reason], [warning]), SourceInfo(kind=kind, as_of=None, detail=failures)
    raise ObsplanError(
        f"no release data for {name} ({failures})",
        file=file,
        key=f"components.{name}",
        hint="run online, set GITHUB_TOKEN, or add fallback_version",
        exit_code=EXIT_FAILED,
    )


def _phase_of(name: str, r: Resolved, inputs: Inputs) -> str:
    if r.spec.phase:
        return r.spec.phase
    for p in inputs.policy.phases:
        if name in p.components:
            return p.name
    return r.defn.phase or "exporters"


def _phases(inputs: Inputs, resolved: dict[str, Resolved]) -> list[str]:
    declared = [p.name for p in inputs.policy.phases]
    extra = sorted({_phase_of(n, r, inputs) for n, r in resolved.items()} - set(declared))
    return declared + extra


def _eol_warnings(name: str, v: Version, inputs: Inputs, today: date) -> list[str]:
    for line in inputs.matrix.support.get(name, []):
        if line.line == v.line() and line.end and date.fromisoformat(line.end) < today:
            return [
                f"{name} {v.line()} support ended {line.end} (per the shipped support data); "
                "a newer line may exist: refresh release data"
            ]
    return []


@dataclass
class ArtifactSources:
    """Where an artifact's URL and sha256 come from, first match wins: the promoted environment's lock (exactly
    its artifacts), the previous lock, upstream (checksum file, or its cache), then checksums learned elsewhere."""

    checksums: ChecksumFetcher
    previous: Lock | None
    promoted: Lock | None = None
    book: ChecksumBook | None = None
    downloads: GrafanaComSource | None = None


async def _artifacts(
    hops: dict[str, Hop], resolved: dict[str, Resolved], platforms: list[str], src: ArtifactSources
) -> dict[tuple[str, Version], dict[str, Artifact]]:
    keys = sorted({(h.component, h.to_version) for h in hops.values()}, key=lambda k: (k[0], k[1]))
    results = await asyncio.gather(*(_artifacts_for(resolved[c], v, platforms, src) for c, v in keys))
    return dict(zip(keys, results, strict=True))


async def _artifacts_for(r: Resolved, v: Version, platforms: list[str], src: ArtifactSources) -> dict[str, Artifact]:
    promoted = _previous_artifacts(src.promoted, r.name, v)
    reuse = _previous_artifacts(src.previous, r.name, v)
    rel = r.cands.usable.get(v) or Release(tag=f"v{v}")
    out: dict[str, Artifact] = {}
    for p in platforms:
        if p in promoted:
            out[p] = promoted[p]
            continue
        if p in reuse and reuse[p].sha256:
            out[p] = reuse[p]
            continue
        explicit = r.spec.artifact_urls.get(str(v), {}).get(p)  # the user's own URL wins over the downloads API
        use_api = src.downloads is not None and rel.downloads_api and not explicit
        pkg = await src.downloads.package(rel.downloads_api, v, p) if use_api else None  # type: ignore[union-attr,arg-type]
        if pkg is not None:  # grafana.com: the exact URL (build id included) and its sha256
            url, sha = pkg
            out[p] = make_artifact(r.defn, url, url.rsplit("/", 1)[-1], sha, None, src.downloads.origin)  # type: ignore[union-attr]
            continue
        art = r.defn.artifact_for(v, rel.tag, p)
        if art is None:
            raise ObsplanError(
                f"no artifact URL is known for {r.name} {v} on {p}",
                key=f"components.{r.name}.artifact_urls",
                hint=f'add artifact_urls: {{"{v}": {{{p}: "https://..."}}}} to versions.yaml',
            )
        url, filename = art
        if rel.assets and on_github(r.defn) and rel.assets.get(filename):
            url = rel.assets[filename]
        sha, checksum_url = await _checksum(r, v, rel, url, filename, src.checksums)
        known = src.book.lookup(r.name, str(v), p, filename) if src.book and not sha else None
        if known is not None:
            sha, checksum_url = known.sha256, known.checksum_url or checksum_url
        out[p] = make_artifact(r.defn, url, filename, sha, checksum_url, known.origin if known else None)
    return out


async def _checksum(
    r: Resolved, v: Version, rel: Release, url: str, filename: str, checksums: ChecksumFetcher
) -> tuple[str | None, str | None]:
    if r.defn.checksum_style == "sidecar":
        cs_url = f"{url}.sha256"
        text, _ = await checksums.text(cs_url)
        return (parse_sidecar(text) if text else None), cs_url
    name = r.defn.checksum_name(v)
    if name is None:
        return None, None
    listed = rel.assets.get(name) if rel.assets and on_github(r.defn) else None
    cs_url = listed or r.defn.download_url.format(repo=r.defn.github_repo, tag=rel.tag, asset=name, version=str(v))
    text, _ = await checksums.text(cs_url)
    return (parse_checksum_file(text).get(filename) if text else None), cs_url


def _previous_artifacts(previous: Lock | None, name: str, v: Version) -> dict[str, Artifact]:
    if previous is None:
        return {}
    comp = previous.components.get(name)
    if comp and comp.version == str(v):
        return dict(comp.artifacts)
    for step in previous.plan.steps:
        if step.component == name and step.to_version == str(v):
            return dict(step.artifacts)
    return {}


def host_policy(policy: PolicyFile) -> HostPolicy:
    """The policy values the executor needs, carried to the host by the lock."""
    limits = policy.archive_limits.model_dump(exclude_none=True)
    return HostPolicy(
        keep_versions=policy.rollback.keep_versions,
        retention_days=policy.rollback.retention_days,
        auto_rollback_on_failure=policy.safety.rollback_on_failure,
        require_checksum_verification=policy.safety.require_checksum_verification,
        on_manual_change=policy.on_manual_change,
        download_deadline_seconds=policy.download_deadline_seconds,
        archive_limits=ArchiveLimits(**limits),
    )
