"""The compiler's first stages called directly (no CLI, no server): specs, sources, from-state, resolve."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from obsplan.compiler.config.specs_stage import load_specs
from obsplan.compiler.intel.advisories import load_advisories
from obsplan.compiler.resolve.fromstate import FromState, from_states
from obsplan.compiler.resolve.resolve_stage import ResolveContext, resolve_targets
from obsplan.compiler.sources.sources_stage import fetch_releases

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.hostfacts import FactsInput
from tests.compiler.stage_parts import config, run_to_resolve, snapshot

V = Version.parse
ADVISORIES = Path(__file__).parents[1] / "fixtures" / "advisories"


def test_specs_merge_the_override_and_decide_the_strategy(tmp_path: Path) -> None:
    specs = load_specs(config(tmp_path), "staging")
    assert {n: s for n, (_, s) in specs.entries.items()} == {"node_exporter": "latest", "mysqld_exporter": "pinned"}
    assert str(specs.entries["mysqld_exporter"][0].version) == "0.15.1"  # the override's version, merged
    assert specs.platforms == ["linux-amd64"]
    assert specs.repos() == ["prometheus/mysqld_exporter", "prometheus/node_exporter"]
    assert specs.env is not None and str(specs.env.current["node_exporter"]) == "1.4.0"


def test_specs_refuse_an_unknown_environment(tmp_path: Path) -> None:
    with pytest.raises(ObsplanError) as err:
        load_specs(config(tmp_path), "prod")
    assert err.value.key == "environments" and "staging" in (err.value.hint or "")


def test_sources_take_the_first_source_that_answers() -> None:
    empty, full = snapshot({}), snapshot()
    got = asyncio.run(fetch_releases(["prometheus/node_exporter", "nobody/nothing"], [empty, full]))
    data, failures = got["prometheus/node_exporter"]
    assert data is not None and [r.tag for r in data.releases][-1] == "v1.6.0"
    assert failures == "prometheus/node_exporter is not in the embedded snapshot"  # the first source's failure
    assert got["nobody/nothing"][0] is None
    assert got["nobody/nothing"][1].count("nobody/nothing is not in the embedded snapshot") == 2


def test_from_state_comes_from_current_then_facts(tmp_path: Path) -> None:
    inputs = config(tmp_path)
    specs = load_specs(inputs, "staging")
    assert from_states(specs, inputs, None, None) == {
        "node_exporter": FromState(V("1.4.0"), "current"),
        "mysqld_exporter": FromState(V("0.15.0"), "current"),
    }
    facts = FactsInput({"node_exporter": V("1.5.0")}, {}, {}, {"host.json": "linux-amd64"})
    states = from_states(specs, inputs, None, facts)
    assert states["node_exporter"] == FromState(V("1.5.0"), "facts")
    assert states["mysqld_exporter"].origin == "current"


def test_from_state_refuses_facts_of_another_platform(tmp_path: Path) -> None:
    inputs = config(tmp_path)
    facts = FactsInput({}, {}, {}, {"pi.json": "linux-arm64"})
    with pytest.raises(ObsplanError) as err:
        from_states(load_specs(inputs, "staging"), inputs, None, facts)
    assert err.value.key == "global.platforms" and "pi.json" in str(err.value)


def test_resolve_picks_each_target_and_keeps_the_from_state(tmp_path: Path) -> None:
    up = run_to_resolve(config(tmp_path), snapshot())
    node, mysqld = up.resolved["node_exporter"], up.resolved["mysqld_exporter"]
    assert (node.current, node.target.version, node.target.reasons[0].code) == (V("1.4.0"), V("1.6.0"), "newest_stable")
    assert (mysqld.strategy, mysqld.target.version, mysqld.target.reasons[0].code) == ("pinned", V("0.15.1"), "pinned")
    assert node.source.kind == "snapshot" and node.warnings == []


def test_resolve_without_release_data_uses_fallback_version(tmp_path: Path) -> None:
    text = "components:\n  node_exporter: {fallback_version: '1.5.0'}\n"
    up = run_to_resolve(config(tmp_path, text), snapshot({}), env="default")
    r = up.resolved["node_exporter"]
    assert r.data is None and r.target.version == V("1.5.0")
    assert r.source.kind == "fallback_version" and r.target.reasons[0].code == "fallback_version"
    assert sorted(r.cands.usable) == [V("1.5.0")]
    assert "release data unavailable, using fallback_version 1.5.0" in r.warnings  # reaches the lock's warnings


def test_resolve_without_release_data_or_fallback_fails(tmp_path: Path) -> None:
    with pytest.raises(ObsplanError) as err:
        run_to_resolve(config(tmp_path, "components:\n  node_exporter: {}\n"), snapshot({}), env="default")
    assert err.value.key == "components.node_exporter" and err.value.exit_code != 2


def test_resolve_says_when_a_newer_release_is_too_young(tmp_path: Path) -> None:
    inputs = config(tmp_path, "components:\n  node_exporter: {}\n", policy="minimum_release_age_days: 30\n")
    source = snapshot({"prometheus/node_exporter": ["1.6.0", "1.7.0"]}, published={"1.7.0": "2026-11-20"})
    up = run_to_resolve(inputs, source, env="default")
    assert sorted(up.pools["node_exporter"].usable) == [V("1.6.0")]
    assert up.pools["node_exporter"].waiting == {V("1.7.0"): "2026-12-20"}
    r = up.resolved["node_exporter"]
    assert r.target.version == V("1.6.0")
    assert [x.code for x in r.target.reasons] == ["newest_stable", "min_age_not_met"]


def test_resolve_lets_a_security_fix_skip_the_age_without_changing_the_pool(tmp_path: Path) -> None:
    text = "components:\n  node_exporter: {}\nenvironments:\n  staging:\n    current: {node_exporter: '1.4.0'}\n"
    inputs = config(tmp_path, text, policy="minimum_release_age_days: 30\n")
    source = snapshot({"prometheus/node_exporter": ["1.4.0", "1.5.0"]}, published={"1.5.0": "2026-11-20"})
    up = run_to_resolve(inputs, source)
    assert up.resolved["node_exporter"].target.version == V("1.4.0")  # no advisories: 1.5.0 waits
    db = load_advisories([ADVISORIES])
    ctx = ResolveContext(up.inputs, up.opts, up.specs, up.releases, up.states, advisories=db)
    resolved, _ = resolve_targets(ctx, up.pools)
    r = resolved["node_exporter"]
    assert r.target.version == V("1.5.0")  # fixes CVE-2022-46146, which affects 1.4.0
    assert [x.code for x in r.target.reasons] == ["newest_stable", "security_fix_skips_min_age"]
    assert V("1.5.0") in r.cands.usable and not r.cands.waiting
    assert up.pools["node_exporter"].waiting == {V("1.5.0"): "2026-12-20"}  # the stage's input is left alone
