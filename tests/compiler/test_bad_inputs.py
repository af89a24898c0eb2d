"""Every bad input: one clear line naming the file and key, exit code 2, and no file written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from obsplan.cli.main import main

GOOD_HEAD = "components:\n  node_exporter:\n"

CASES = {
    "malformed_yaml": ("components: [\n  node_exporter\n", "malformed YAML"),
    "unknown_key": (GOOD_HEAD + "    strateg: latest\n", "components.node_exporter.strateg: unknown key"),
    "bad_semver": (GOOD_HEAD + "    strategy: pinned\n    version: 1.7\n", "components.node_exporter.version"),
    "unknown_strategy": (GOOD_HEAD + "    strategy: newest\n", "expected 'latest', 'pinned', 'range' or 'lts'"),
    "slash_in_name": ("components:\n  ../etc: {}\n", "no '/', '..'"),
    "dotdot_in_name": ("components:\n  a..b: {}\n", "no '/', '..'"),
    "range_matches_nothing": (
        GOOD_HEAD + "    strategy: range\n    version_range: '>=9.0.0 <10.0.0'\n",
        "matches no usable release",
    ),
    "bad_range": (GOOD_HEAD + "    strategy: range\n    version_range: '>=one'\n", "bad version in range"),
    "custom_without_artifact": (
        "components:\n  blackbox_exporter:\n    github_repo: prometheus/blackbox_exporter\n",
        "needs artifact",
    ),
    "unknown_env_key": (
        "components: {}\nenvironments:\n  staging:\n    offline: true\n",
        "environments.staging.offline: unknown key",
    ),
    "top_level_list": ("- a\n- b\n", "expected a mapping"),
    # runtime settings of the service definitions (policies/services.yaml)
    "setting_not_read": (
        GOOD_HEAD + "    runtime: {scrape_uri: 'http://127.0.0.1:8080/stub_status'}\n",
        "components.node_exporter.runtime.scrape_uri: node_exporter does not use runtime.scrape_uri",
    ),
    "mysql_address_without_port": (
        "components:\n  mysqld_exporter:\n    runtime: {mysql: {address: db, user: e, password_file: /p}}\n",
        "components.mysqld_exporter.runtime.mysql.address",
    ),
    "mysql_relative_password_file": (
        "components:\n  mysqld_exporter:\n    runtime: {mysql: {user: e, password_file: mysql.pw}}\n",
        "must be an absolute path",
    ),
    "mysql_password_inline": (
        "components:\n  mysqld_exporter:\n    runtime: {mysql: {user: e, password: x, password_file: /p}}\n",
        "components.mysqld_exporter.runtime.mysql.password: unknown key",
    ),
    "bad_retention": (
        "components:\n  alertmanager:\n    runtime: {storage: {retention: forever}}\n",
        "components.alertmanager.runtime.storage.retention",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_versions_yaml(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = CASES[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OBSPLAN_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "versions.yaml").write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, ["plan", "--config-dir", str(tmp_path), "--offline"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0] and "versions.yaml" in lines[0] and "hint:" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == before


def test_bad_policy_and_unknown_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "versions.yaml").write_text("components:\n  node_exporter: {}\n")
    (tmp_path / "upgrade-policy.yaml").write_text("auto_upgrade:\n  allowed_risk_levels: [tiny]\n")
    result = CliRunner().invoke(main, ["plan", "--config-dir", str(tmp_path), "--offline"])
    assert result.exit_code == 2 and "upgrade-policy.yaml: auto_upgrade.allowed_risk_levels.0" in result.stderr
    (tmp_path / "upgrade-policy.yaml").unlink()
    result = CliRunner().invoke(main, ["plan", "--config-dir", str(tmp_path), "--offline", "--env", "prod"])
    assert result.exit_code == 2 and "unknown environment 'prod'" in result.stderr
    assert not (tmp_path / "plans").exists()


def test_hand_edited_lock_is_refused_by_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    lock = tmp_path / "x.lock"
    lock.write_text((root / "plans" / "staging.lock").read_text().replace('"1.12.1"', '"1.12.2"'))
    result = CliRunner().invoke(main, ["diff", str(lock), str(root / "plans" / "production.lock")])
    assert result.exit_code == 2 and "edited after it was generated" in result.stderr
