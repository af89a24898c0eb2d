"""Issue 19 item 12, each as the user meets it on the command line: a downgrade is not "(upgrade available)";
`list-versions` says when its versions come from the embedded snapshot; the lock paths README.md and docs/ name exist; `apply`
runs in seed 003's default mode, `safe`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from obsplan.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def test_a_pinned_downgrade_is_labelled_a_downgrade(tmp_path: Path) -> None:
    (tmp_path / "versions.yaml").write_text(
        "components:\n  node_exporter: {strategy: pinned, version: '1.7.0'}\n"
        "  nginx_exporter: {strategy: pinned, version: '1.4.1'}\n"
        "environments:\n  prod:\n    current: {node_exporter: '1.9.0', nginx_exporter: '1.1.0'}\n"
    )
    res = CliRunner().invoke(main, ["check-upgrades", "--config-dir", str(tmp_path), "--env", "prod", "--offline"])
    assert res.exit_code == 0, res.output
    lines = {line.split(":")[0]: line for line in res.stdout.splitlines() if ":" in line}
    assert "1.9.0 → 1.7.0 (downgrade)" in lines["node_exporter"], res.stdout
    assert "1.1.0 → 1.4.1 (upgrade available)" in lines["nginx_exporter"], res.stdout


def test_list_versions_says_when_it_falls_back_to_the_embedded_snapshot() -> None:
    res = CliRunner().invoke(main, ["list-versions", "node_exporter"])  # GitHub unreachable here
    assert res.exit_code == 0, res.output
    assert "come from the release snapshot embedded in obsplan of" in res.stderr
    assert "GitHub API unreachable" in res.stderr and "newer ones may exist" in res.stderr
    assert re.match(r"^\d+\.\d+\.\d+ ", res.stdout)
    offline = CliRunner().invoke(main, ["list-versions", "node_exporter", "--offline"])
    assert "embedded in obsplan" in offline.stderr and "(offline)" in offline.stderr


def test_every_lock_the_readme_names_is_in_the_repository() -> None:
    moved = ["configuration", "commands", "review-ci", "apply", "fleet", "development"]  # from the README
    texts = [(ROOT / "README.md").read_text(), *((ROOT / "docs" / f"{name}.md").read_text() for name in moved)]
    named = set(re.findall(r"\bplans/[\w.-]+\.lock\b", "\n".join(texts)))
    assert "plans/production.lock" in named
    assert {p for p in named if not (ROOT / p).exists() and "<env>" not in p} == set()


def test_apply_runs_in_safe_mode_by_default(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["apply", str(ROOT / "plans" / "production.lock"), "--root", str(tmp_path), "--dry-run", "--json"]
    )
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    [started] = [e for e in events if e["event"] == "run_started"]
    assert started["metadata"]["mode"] == "safe"
    assert "[default: safe]" in CliRunner().invoke(main, ["apply", "--help"]).output
