"""The lock stage: ordered steps (risk, reasons, approval, artifacts), component entries, and the sealed lock."""

from __future__ import annotations

from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.plan_options import Options
from obsplan.compiler.config.policy import PolicyFile
from obsplan.compiler.config.versions_file import EnvironmentSpec
from obsplan.compiler.intel.intel_stage import Findings
from obsplan.compiler.intel.step_risk import StepIntel
from obsplan.compiler.plan.artifacts_stage import ArtifactKey
from obsplan.compiler.plan.dag import Hop, ordered_steps, risk_of
from obsplan.compiler.plan.plan_stage import Planned
from obsplan.compiler.plan.risk_order import riskier
from obsplan.compiler.plan.soak_rules import soak_seconds
from obsplan.compiler.resolve.fromrules import refuse_from
from obsplan.compiler.resolve.fromstate import stated_text
from obsplan.compiler.resolve.resolve_stage import Resolved
from obsplan.compiler.sources.known_checksums import FolderLock
from obsplan.compiler.sources.upstream_checksums import MISSING_CHECKSUM

from obsplan import __version__
from obsplan.lock.lockfile import (
    FORMAT_VERSION,
    AdvisoryScan,
    ArchiveLimits,
    Artifact,
    ComponentLock,
    HostPolicy,
    Lock,
    Plan,
    Step,
)


def build_steps(
    planned: Planned,
    resolved: dict[str, Resolved],
    findings: Findings,
    artifacts: dict[ArtifactKey, dict[str, Artifact]],
    inputs: Inputs,
) -> list[Step]:
    """The steps in DAG order (ties: phase, component, version)."""
    hops = planned.hops()
    return [
        _step(hops[sid], planned, resolved[hops[sid].component], findings.intel[sid], artifacts, inputs)
        for sid in ordered_steps(planned.graph, planned.phases)
    ]


def _step(
    hop: Hop,
    planned: Planned,
    r: Resolved,
    info: StepIntel,
    artifacts: dict[ArtifactKey, dict[str, Artifact]],
    inputs: Inputs,
) -> Step:
    level, base_reasons = risk_of(hop)
    if info.raise_to and riskier(info.raise_to, level):
        level = info.raise_to
    target_reasons = r.target.reasons if hop.to_version == r.target.version else []
    reasons = base_reasons + hop.reasons + info.reasons + target_reasons
    return Step(
        id=hop.id,
        component=hop.component,
        from_version=str(hop.from_version) if hop.from_version else None,
        to_version=str(hop.to_version),
        phase=planned.graph.nodes[hop.id]["phase"],
        requires=requirements(planned, hop.id),
        risk=level,  # type: ignore[arg-type]
        reasons=reasons,
        artifacts=artifacts[(hop.component, hop.to_version)],
        rollback_floor=str(hop.rollback_floor) if hop.rollback_floor else None,
        breaking_changes=info.breaking,
        priority="security" if any(x.code == "security_fix" for x in reasons) else "normal",
        approval=approval(hop.id, level, inputs.policy),
        refuse_from=refuse_from(hop.component, hop.to_version, r.strategy == "pinned", inputs.matrix),
        soak_seconds=soak_seconds(inputs.policy.soak, hop.component, str(hop.from_version or "") or None),
    )


def requirements(planned: Planned, step_id: str) -> list[str]:
    """The steps this one needs done first: the component's previous hop and the matrix's requirements. The phase
    order is not one: a failed exporter step does not hold Prometheus back (`plan.phases` orders the run)."""
    graph = planned.graph
    return sorted(p for p in graph.predecessors(step_id) if graph.edges[p, step_id].get("why") != "phase")


def phase_aliases(policy: PolicyFile, phases: list[str]) -> dict[str, str]:
    """alias → phase for the policy's phases this plan has (`apply --phase core` keeps working)."""
    return {a: p.name for p in policy.phases if p.name in phases for a in p.aliases}


def approval(step_id: str, risk: str, policy: PolicyFile) -> str | None:
    """Why a step may run unattended (`obsplan apply --auto`), or None when it waits for approval."""
    if step_id in policy.approvals:
        return "listed in the policy's approvals"
    auto = policy.auto_upgrade
    if auto.enabled and risk in auto.allowed_risk_levels:
        return f"auto_upgrade allows {risk} risk"
    return None


def component_locks(
    resolved: dict[str, Resolved],
    artifacts: dict[ArtifactKey, dict[str, Artifact]],
    findings: Findings,
    warnings: dict[str, list[str]],
    env: EnvironmentSpec | None,
) -> dict[str, ComponentLock]:
    """Each component's lock entry; `warnings`: the later stages' warnings beside its own."""
    out: dict[str, ComponentLock] = {}
    for name, r in sorted(resolved.items()):
        arts = artifacts[(name, r.target.version)]
        missing = [p for p, a in arts.items() if a.sha256 is None]
        unverified = [
            f"{MISSING_CHECKSUM} {r.target.version} on {', '.join(missing)}: "
            "apply will refuse it until a checksum is available (run plan online)"
        ]
        out[name] = ComponentLock(
            version=str(r.target.version),
            current=str(r.current) if r.current else None,
            stated_current=stated_text(env, name),
            strategy=r.strategy,
            github_repo=r.defn.github_repo,
            source=r.source,
            artifacts=arts,
            runtime=r.defn.runtime,
            warnings=sorted(set(r.warnings + warnings.get(name, []) + (unverified if missing else []))),
            advisories=findings.advisories.get(name, []),
        )
    return out


def seal_lock(
    opts: Options,
    inputs: Inputs,
    platforms: list[str],
    components: dict[str, ComponentLock],
    plan: Plan,
    promoted: FolderLock | None,
    scan: AdvisoryScan | None = None,
) -> Lock:
    """The lock, with the digest of every input it was compiled from, sealed (content hash)."""
    return Lock(
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
        plan=plan,
        host_policy=host_policy(inputs.policy),
        advisory_scan=scan,
    ).sealed()


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
        verify=policy.verify,
    )
