"""Small real inputs for the compiler's stage tests: a config dir, a release source, the stages run up to one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from obsplan.compiler.config.inputs import Inputs, load_inputs
from obsplan.compiler.config.plan_options import Options
from obsplan.compiler.config.specs_stage import Specs, load_specs
from obsplan.compiler.plan.plan_stage import Planned, plan_graph
from obsplan.compiler.resolve.fromstate import FromState, from_states
from obsplan.compiler.resolve.pick_target import Candidates
from obsplan.compiler.resolve.resolve_stage import ResolveContext, Resolved, candidate_pools, resolve_targets
from obsplan.compiler.sources.snapshot import SnapshotSource
from obsplan.compiler.sources.sources_stage import Fetched, fetch_releases

NOW = datetime(2026, 11, 22, tzinfo=UTC)

CONFIG = """\
global: {platforms: [linux-amd64]}
components:
  node_exporter: {strategy: latest}
  mysqld_exporter:
    strategy: latest
    runtime: {mysql: {address: "127.0.0.1:3306", user: exporter, password_file: /etc/obsplan/mysql.pw}}
environments:
  staging:
    current: {node_exporter: "1.4.0", mysqld_exporter: "0.15.0"}
    component_overrides:
      mysqld_exporter: {version: "0.15.1"}
"""

RELEASES = {
    "prometheus/node_exporter": ["1.3.1", "1.4.0", "1.5.0", "1.6.0"],
    "prometheus/mysqld_exporter": ["0.15.0", "0.15.1", "0.16.0"],
}


def config(tmp_path: Path, text: str = CONFIG, policy: str | None = None) -> Inputs:
    cfg = tmp_path / "cfg"
    cfg.mkdir(exist_ok=True)
    (cfg / "versions.yaml").write_text(text)
    if policy is not None:
        (cfg / "upgrade-policy.yaml").write_text(policy)
    return load_inputs(cfg)


def snapshot(releases: dict[str, list[str]] = RELEASES, published: dict[str, str] | None = None) -> SnapshotSource:
    """A real release source over a small in-memory snapshot document (published 2026-01-01 unless given)."""
    dates = published or {}
    repos = {
        repo: {"releases": [{"tag": f"v{v}", "published_at": dates.get(v, "2026-01-01")} for v in versions]}
        for repo, versions in releases.items()
    }
    return SnapshotSource({"as_of": "2026-11-01", "repos": repos})


@dataclass
class Upto:
    """The stages' outputs up to the resolve stage, from `config` and `snapshot`."""

    inputs: Inputs
    opts: Options
    specs: Specs
    releases: dict[str, Fetched]
    states: dict[str, FromState]
    pools: dict[str, Candidates]
    resolved: dict[str, Resolved]

    def planned(self, allow: frozenset[str] = frozenset()) -> Planned:
        return plan_graph(self.resolved, self.inputs, set(allow))


def run_to_resolve(inputs: Inputs, source: SnapshotSource, env: str = "staging") -> Upto:
    opts = Options(environment=env, now=NOW, offline=True)
    specs = load_specs(inputs, env)
    releases = asyncio.run(fetch_releases(specs.repos(), [source]))
    states = from_states(specs, inputs, None, None)
    pools = candidate_pools(specs, releases, inputs, NOW.date())
    resolved, _ = resolve_targets(ResolveContext(inputs, opts, specs, releases, states), pools)
    return Upto(inputs, opts, specs, releases, states, pools, resolved)
