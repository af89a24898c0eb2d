"""The compiler's later stages called directly (no CLI, no server): plan, intelligence, artifacts, lock; and
`compile_lock` running them all."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from obsplan.compiler.compile import Services, compile_lock
from obsplan.compiler.intel.advisories import load_advisories
from obsplan.compiler.intel.intel_stage import IntelSources, find_intel
from obsplan.compiler.plan.artifacts_stage import ArtifactSources, collect_artifacts
from obsplan.compiler.plan.lock_stage import approval, build_steps, component_locks, seal_lock
from obsplan.compiler.plan.plan_stage import no_downgrade
from obsplan.compiler.sources.http_cache import CacheEntry, HttpCache, RequestKey
from obsplan.compiler.sources.upstream_checksums import MISSING_CHECKSUM, ChecksumFetcher

from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Plan
from tests.compiler.stage_parts import NOW, config, run_to_resolve, snapshot

V = Version.parse
ADVISORIES = Path(__file__).parents[1] / "fixtures" / "advisories"
NODE = "components:\n  node_exporter: {}\nenvironments:\n  staging:\n    current: {node_exporter: '%s'}\n"
SHA = "ab" * 32


def _checksums(tmp_path: Path, *tags: str) -> ChecksumFetcher:
    """An offline checksum fetcher whose HTTP cache holds node_exporter's sha256sums.txt for `tags`."""
    http = HttpCache(tmp_path / "cache", None, ttl=timedelta(minutes=15), now=NOW, offline=True)
    for tag in tags:
        url = f"https://github.com/prometheus/node_exporter/releases/download/{tag}/sha256sums.txt"
        body = f"{SHA}  node_exporter-{tag[1:]}.linux-amd64.tar.gz\n"
        entry = CacheEntry(
            method="GET", url=url, request_sha256=None, status=200, immutable=True, fetched_at=NOW, body=body
        )
        http.store(RequestKey("GET", url), entry)
    return ChecksumFetcher(http)


def test_plan_orders_hops_by_phase_with_the_matrix_reasons(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path), snapshot())
    planned = up.planned()
    assert planned.phases == ["exporters", "prometheus", "loki", "dashboards"]
    hops = {n: [(h.id, [r.code for r in h.reasons]) for h in p.hops] for n, p in planned.paths.items()}
    assert hops == {
        "node_exporter": [("node_exporter@1.6.0", ["curated_breaking"])],  # node-exporter-1.5-web-config-flag
        "mysqld_exporter": [("mysqld_exporter@0.15.1", [])],
    }
    assert sorted(planned.graph.nodes) == sorted(planned.hops())
    assert planned.refusals == [] and planned.warnings == {}


def test_plan_refuses_a_downgrade_unless_pinned(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path), snapshot())
    ahead = {n: replace(r, current=V("9.0.0")) for n, r in up.resolved.items()}
    assert [x.message for x in no_downgrade(ahead)] == ["node_exporter would move back to 1.6.0"]  # mysqld: pinned
    assert [x.rule for x in replace(up, resolved=ahead).planned().refusals] == ["no-downgrade"]


def test_intelligence_reports_the_advisory_a_step_fixes(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path, NODE % "1.4.0"), snapshot({"prometheus/node_exporter": ["1.4.0", "1.5.0"]}))
    planned = up.planned()
    src = IntelSources(advisories=load_advisories([ADVISORIES]))
    found = asyncio.run(find_intel(planned.paths, up.resolved, up.inputs.policy, src, set()))
    info = found.intel["node_exporter@1.5.0"]
    assert [r.code for r in info.reasons] == ["changelog_unavailable", "security_fix"]
    assert info.raise_to == "medium"  # no changelog: risk is not lowered
    assert [e.id for e in found.advisories["node_exporter"]] == ["GHSA-7rg2-cxvp-9p7p"]
    assert found.refusals == []


def test_intelligence_refuses_an_affected_target_unless_allowed(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path, NODE % "1.3.1"), snapshot({"prometheus/node_exporter": ["1.3.1", "1.4.0"]}))
    planned = up.planned()
    src = IntelSources(advisories=load_advisories([ADVISORIES]))
    found = asyncio.run(find_intel(planned.paths, up.resolved, up.inputs.policy, src, set()))
    assert [x.rule for x in found.refusals] == ["GHSA-7rg2-cxvp-9p7p"]
    allowed = asyncio.run(find_intel(planned.paths, up.resolved, up.inputs.policy, src, {"GHSA-7rg2-cxvp-9p7p"}))
    assert allowed.refusals == []


@pytest.mark.parametrize("detect", [True, False])
def test_breaking_change_detection_off_reads_no_changelog_and_raises_no_risk(tmp_path: Path, detect: bool) -> None:
    """As upgrade-policy.yaml documents it: false means no changelog parsing, no breaking_changes, no risk raise.
    On, a hop whose CHANGELOG cannot be read is raised to medium (`changelog_unavailable`)."""
    policy = f"safety: {{breaking_change_detection: {str(detect).lower()}}}\n"
    up = run_to_resolve(config(tmp_path, NODE % "1.4.0", policy), snapshot({"prometheus/node_exporter": ["1.5.0"]}))
    planned = up.planned()
    found = asyncio.run(find_intel(planned.paths, up.resolved, up.inputs.policy, IntelSources(), set()))
    info = found.intel["node_exporter@1.5.0"]
    assert info.breaking == [] and found.advisories == {}
    assert [r.code for r in info.reasons] == (["changelog_unavailable"] if detect else [])
    assert info.raise_to == ("medium" if detect else None)


def test_artifacts_for_every_hop_and_every_target(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path), snapshot())
    planned = up.planned()
    src = ArtifactSources(_checksums(tmp_path, "v1.6.0"), None)
    arts = asyncio.run(collect_artifacts(planned.hops(), up.resolved, up.specs.platforms, src))
    assert sorted(arts) == [("mysqld_exporter", V("0.15.1")), ("node_exporter", V("1.6.0"))]
    node = arts[("node_exporter", V("1.6.0"))]["linux-amd64"]
    assert node.url.endswith("/v1.6.0/node_exporter-1.6.0.linux-amd64.tar.gz") and node.sha256 == SHA
    assert arts[("mysqld_exporter", V("0.15.1"))]["linux-amd64"].sha256 is None  # not in the cache, offline


def test_artifacts_of_a_target_no_hop_reaches(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path, NODE % "1.6.0"), snapshot())
    planned = up.planned()
    assert planned.hops() == {}
    src = ArtifactSources(_checksums(tmp_path, "v1.6.0"), None)
    arts = asyncio.run(collect_artifacts(planned.hops(), up.resolved, up.specs.platforms, src))
    assert arts[("node_exporter", V("1.6.0"))]["linux-amd64"].sha256 == SHA


def test_lock_stage_builds_steps_components_and_a_sealed_lock(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path), snapshot())
    planned = up.planned()
    found = asyncio.run(find_intel(planned.paths, up.resolved, up.inputs.policy, IntelSources(), set()))
    src = ArtifactSources(_checksums(tmp_path, "v1.6.0"), None)
    arts = asyncio.run(collect_artifacts(planned.hops(), up.resolved, up.specs.platforms, src))
    steps = build_steps(planned, up.resolved, found, arts, up.inputs)
    assert [(s.id, s.risk, s.phase) for s in steps] == [
        ("mysqld_exporter@0.15.1", "medium", "exporters"),  # patch bump, raised: no changelog for the range
        ("node_exporter@1.6.0", "high", "exporters"),  # curated breaking change
    ]
    assert [r.code for r in steps[1].reasons][:2] == ["minor_bump", "curated_breaking"]
    components = component_locks(up.resolved, arts, found, {"node_exporter": ["from a later stage"]}, up.specs.env)
    assert components["node_exporter"].warnings == ["from a later stage"]
    assert components["mysqld_exporter"].warnings[0].startswith(MISSING_CHECKSUM)
    assert (components["node_exporter"].current, components["node_exporter"].stated_current) == ("1.4.0", "1.4.0")
    lock = seal_lock(up.opts, up.inputs, up.specs.platforms, components, Plan(phases=planned.phases, steps=steps), None)
    assert lock.content_sha256 and lock.environment == "staging" and "versions.yaml" in lock.inputs
    assert lock.host_policy.keep_versions == up.inputs.policy.rollback.keep_versions


def test_approval_comes_from_the_policy(tmp_path: Path) -> None:
    policy = config(tmp_path, policy="approvals: [node_exporter@1.6.0]\n").policy
    assert approval("node_exporter@1.6.0", "high", policy) == "listed in the policy's approvals"
    assert approval("mysqld_exporter@0.15.1", "low", policy) is None  # auto_upgrade is off
    auto = policy.model_copy(update={"auto_upgrade": policy.auto_upgrade.model_copy(update={"enabled": True})})
    assert approval("mysqld_exporter@0.15.1", "low", auto) == "auto_upgrade allows low risk"
    assert approval("mysqld_exporter@0.15.1", "medium", auto) is None


def test_compile_lock_runs_the_stages_in_order(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path), snapshot())
    svc = Services([snapshot()], _checksums(tmp_path, "v1.6.0"))
    result = asyncio.run(compile_lock(up.inputs, up.opts, None, svc))
    assert {n: c.version for n, c in result.lock.components.items()} == {
        "mysqld_exporter": "0.15.1",
        "node_exporter": "1.6.0",
    }
    assert [s.id for s in result.lock.plan.steps] == ["mysqld_exporter@0.15.1", "node_exporter@1.6.0"]
    assert [x.rule for x in result.refusals] == []
