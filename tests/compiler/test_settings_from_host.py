"""Seed 003's Phase 1 plans as written (issue 19 item 1): `mysqld_exporter: {strategy: latest}` from 0.15.1
with no `runtime.mysql` in versions.yaml is planned (the exporter already runs with its credentials); the lock
says the step takes them from the host, the report's decisions say where from, and the other components'
steps are planned alike. With `runtime.mysql` given, nothing is taken from the host."""

from __future__ import annotations

import json
from pathlib import Path

from tests.compiler.test_scenarios import run
from tests.ghserver import FakeGitHub

SEED_003_PHASE_1 = """\
components:
  node_exporter: {strategy: latest}
  mysqld_exporter: {strategy: latest}
environments:
  prod:
    current: {node_exporter: "1.7.0", mysqld_exporter: "0.15.1"}
"""
MYSQL = '    runtime: {mysql: {address: "127.0.0.1:3306", user: exporter, password_file: /etc/obsplan/mysql.pw}}\n'


def test_seed_003_phase_1_plans_and_says_where_credentials_come_from(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(SEED_003_PHASE_1)
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "prod", "-o", str(tmp_path / "p.lock"))
    assert code == 0, out + err
    lock = json.loads((tmp_path / "p.lock").read_text())
    steps = {s["component"]: s for s in lock["plan"]["steps"]}
    assert steps["mysqld_exporter"]["from_version"] == "0.15.1"
    assert steps["mysqld_exporter"]["settings_from_host"] == ["mysql"]
    assert "settings_from_host" not in steps["node_exporter"]  # left out when empty: older locks keep their hash
    report = (tmp_path / "p.md").read_text()
    decisions = report.split("\n## ", 2)[1]  # the summary of decisions comes first
    assert "mysqld_exporter: runtime.mysql not in versions.yaml: `obsplan apply` takes them from the running" in (
        decisions
    ), report[:3000]

    (cfg / "versions.yaml").write_text(
        SEED_003_PHASE_1.replace(
            "  mysqld_exporter: {strategy: latest}\n", "  mysqld_exporter:\n    strategy: latest\n" + MYSQL
        )
    )
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "prod", "-o", str(tmp_path / "q.lock"))
    assert code == 0, out + err
    steps = {s["component"]: s for s in json.loads((tmp_path / "q.lock").read_text())["plan"]["steps"]}
    assert "settings_from_host" not in steps["mysqld_exporter"]
