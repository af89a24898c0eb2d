"""Each folder under tests/scenarios is one case: config in, expected steps out (a new case needs no Python)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from obsplan.cli.main import main
from tests.conftest import SCENARIOS, forget_releases, write_config
from tests.ghserver import FakeGitHub

CASES = sorted(p.name for p in SCENARIOS.iterdir() if (p / "scenario.yaml").exists())


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES)
def test_scenario(case: str, gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load((SCENARIOS / case / "scenario.yaml").read_text())
    cfg = write_config(tmp_path / "cfg", case, gh)
    args = ["plan", "--config-dir", str(cfg), "--env", spec["env"], *spec.get("args", [])]
    code, out, err = run(*args)
    if "error" in spec:
        assert code == 2 and spec["error"] in err, out + err
        assert not (tmp_path / "plans").exists()
        return
    if "refused" in spec:
        assert code == 1, out + err
        for rule in spec["refused"]:
            assert f"[{rule}]" in err
        assert not (tmp_path / "plans").exists()
        return
    assert code == 0, err
    lock = json.loads((tmp_path / "plans" / f"{spec['env']}.lock").read_text())
    assert sorted(s["id"] for s in lock["plan"]["steps"]) == sorted(spec["steps"])


def test_seed_scenario_two_stage_prometheus_and_loki_with_promtail(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "staging")
    assert code == 0, err
    lock = json.loads((tmp_path / "plans" / "staging.lock").read_text())
    steps = {s["id"]: s for s in lock["plan"]["steps"]}
    order = [s["id"] for s in lock["plan"]["steps"]]
    hop, final = steps["prometheus@2.55.1"], steps["prometheus@3.14.0"]
    assert (hop["from_version"], hop["to_version"]) == ("2.48.1", "2.55.1")
    assert final["from_version"] == "2.55.1" and "prometheus@2.55.1" in final["requires"]
    assert "required_hop" in {r["code"] for r in hop["reasons"]}
    assert final["rollback_floor"] == "2.55.0" and final["risk"] == "high"
    # Alertmanager >= 0.16 before Prometheus 3, phases in order, Loki before Promtail in one phase.
    assert "alertmanager@0.34.0" in final["requires"]
    assert order.index("node_exporter@1.12.1") < order.index("prometheus@2.55.1")
    assert steps["loki@3.7.6"]["phase"] == steps["promtail@3.6.11"]["phase"] == "loki"
    assert "loki@3.7.6" in steps["promtail@3.6.11"]["requires"]
    assert order.index("promtail@3.6.11") < order.index("grafana@10.4.19+security-01")
    assert any("Alloy" in w for w in lock["components"]["promtail"]["warnings"])
    # Checksums are the real digests of what the server serves.
    art = lock["components"]["prometheus"]["artifacts"]["linux-amd64"]
    body = gh.asset_bytes("prometheus/prometheus", "v3.14.0", "prometheus-3.14.0.linux-amd64.tar.gz")
    assert art["sha256"] == hashlib.sha256(body).hexdigest()
    assert art["url"].startswith(gh.url) and art["checksum_status"] == "verified_upstream"
    graf = lock["components"]["grafana"]["artifacts"]["linux-amd64"]
    assert graf["checksum_url"] == graf["url"] + ".sha256" and len(graf["sha256"]) == 64
    for name, comp in lock["components"].items():
        assert comp["source"]["kind"] == ("grafana_com" if name == "grafana" else "github"), name
    assert "2.48.1 → 2.55.1" in out or "prometheus: 2.48.1 → 3.14.0" in out
    report = (tmp_path / "plans" / "staging.md").read_text()
    assert "```mermaid" in report and "prometheus 2.48.1 → 2.55.1" in report


def test_plan_twice_is_byte_identical_and_check_passes(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    first = (tmp_path / "plans" / "staging.lock").read_bytes()
    gh.rate_limit(True)  # the second run must not need the network at all (fresh cache, checksums cached)
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    assert (tmp_path / "plans" / "staging.lock").read_bytes() == first
    code, out, _ = run("plan", "--config-dir", str(cfg), "--env", "staging", "--check")
    assert code == 0, out


def test_check_catches_edited_lock_and_edited_config(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    lock_path = tmp_path / "plans" / "staging.lock"
    original = lock_path.read_text()
    lock_path.write_text(original.replace('"version": "1.12.1"', '"version": "1.11.0"'))
    code, out, _ = run("plan", "--config-dir", str(cfg), "--env", "staging", "--check")
    assert code == 1 and "edited by hand" in out
    lock_path.write_text(original)
    versions = cfg / "versions.yaml"
    versions.write_text(
        versions.read_text().replace("  mysqld_exporter:", '  mysqld_exporter:\n    exclude: ["0.20.0"]', 1)
    )
    code, out, _ = run("plan", "--config-dir", str(cfg), "--env", "staging", "--check")
    assert code == 1 and "input versions.yaml changed" in out and "mysqld_exporter.version 0.20.0" in out


def _node_release(v: str, date: str) -> dict[str, object]:
    return {
        "tag_name": f"v{v}",
        "created_at": f"{date}T00:00:00Z",
        "assets": [f"node_exporter-{v}.linux-amd64.tar.gz", "sha256sums.txt"],
    }


def test_lock_keeps_versions_until_upgrade(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    gh.set_releases(
        "prometheus/node_exporter",
        [
            _node_release("1.7.0", "2023-11-12"),
            _node_release("1.8.0", "2024-04-24"),
        ],
    )
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    lock_path = tmp_path / "plans" / "staging.lock"
    assert json.loads(lock_path.read_text())["components"]["node_exporter"]["version"] == "1.8.0"
    gh.set_releases(
        "prometheus/node_exporter",
        [
            _node_release("1.7.0", "2023-11-12"),
            _node_release("1.8.0", "2024-04-24"),
            _node_release("1.9.0", "2025-02-17"),
        ],
    )
    forget_releases(obsplan_env, gh, "prometheus/node_exporter")
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    node = json.loads(lock_path.read_text())["components"]["node_exporter"]
    assert node["version"] == "1.8.0"
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "staging", "--upgrade-package", "node_exporter")
    assert code == 0, err
    assert json.loads(lock_path.read_text())["components"]["node_exporter"]["version"] == "1.9.0"


def test_diff_between_environments(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    assert run("plan", "--config-dir", str(cfg), "--env", "staging")[0] == 0
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "production")
    assert code == 0, err
    code, out, _ = run("diff", "plans/staging.lock", "plans/production.lock")
    assert code == 0
    assert out == snapshot
    code, out, _ = run("diff", "plans/staging.lock", "plans/production.lock", "--json")
    rows = {r["component"]: r for r in json.loads(out)["components"]}
    assert rows["node_exporter"]["b"] == "1.7.0" and not rows["node_exporter"]["same"]


def test_offline_seed_lock_snapshot(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "staging", "--offline")
    assert code == 0, err

    # The local server's port (and so the content hash) changes per run; everything else must be byte-stable.
    def stable(text: str) -> str:
        text = re.sub(r'("content_sha256": |"versions.yaml": |Lock content sha256: `)"?[0-9a-f]{64}', r"\1<hash>", text)
        return text.replace(gh.url, "http://fake-github")

    assert stable((tmp_path / "plans" / "staging.lock").read_text()) == snapshot
    assert stable((tmp_path / "plans" / "staging.md").read_text()) == snapshot
