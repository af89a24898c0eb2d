"""check-upgrades, list-versions, snapshot refresh, user matrix extension, drafts and --json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.compiler.test_scenarios import run
from tests.conftest import write_config
from tests.ghserver import FakeGitHub


def test_check_upgrades_writes_nothing(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    code, out, err = run("check-upgrades", "--config-dir", str(cfg), "--env", "staging")
    assert code == 0, err
    assert "node_exporter: 1.7.0 → 1.12.1 (upgrade available) risk=medium" in out
    assert not (tmp_path / "plans").exists()
    code, out, _ = run("check-upgrades", "--config-dir", str(cfg), "--env", "staging", "--json")
    rows = {r["component"]: r for r in json.loads(out)["components"]}
    assert rows["prometheus"]["target"] == "3.14.0" and rows["prometheus"]["risk"] == "high"


def test_list_versions_messy_tags(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    code, out, err = run("list-versions", "prometheus", "--json")
    assert code == 0, err
    versions = [r["version"] for r in json.loads(out)]
    assert versions[0] == "3.14.0" and "0.314.0" not in versions and "2.43.0" in versions
    assert not any(v and "rc" in v for v in versions)
    code, out, _ = run("list-versions", "fail2ban_exporter")
    assert out.splitlines()[0].startswith("0.10.1") and "0.0.0" in out


def test_snapshot_refresh_from_api(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    code, out, err = run("snapshot", "refresh", "-o", str(tmp_path / "snap.json"))
    assert code == 0, err
    doc = json.loads((tmp_path / "snap.json").read_text())
    assert doc["as_of"] == "2026-11-22" and len(doc["repos"]) == 9
    tags = {r["tag"] for r in doc["repos"]["grafana/loki"]["releases"]}
    assert "v3.7.6" in tags
    gh.rate_limit(True)
    code, _, err = run("snapshot", "refresh", "-o", str(tmp_path / "snap2.json"))
    assert code == 2 and "rate limit" in err and not (tmp_path / "snap2.json").exists()


def test_user_matrix_extends_shipped(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(
        "components:\n  node_exporter: {}\nenvironments:\n  prod:\n    current: {node_exporter: '1.7.0'}\n"
    )
    (cfg / "matrix.yaml").write_text(
        "rules:\n  - id: site-node-exporter-via-1.9\n    kind: required_hop\n    component: node_exporter\n"
        "    from: '<1.9.0'\n    to: '>=1.10.0'\n    via_line: '1.9'\n    severity: mandatory\n"
        "    reason: our dashboards need a 1.9 stop\n"
    )
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "prod")
    assert code == 0, err
    steps = [s["id"] for s in json.loads((tmp_path / "plans" / "prod.lock").read_text())["plan"]["steps"]]
    assert steps == ["node_exporter@1.9.1", "node_exporter@1.12.1"]


def test_drafts_and_prereleases_are_never_picked(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    def rel(v: str, **kw: object) -> dict[str, object]:
        return {
            "tag_name": f"v{v}",
            "created_at": "2026-01-01T00:00:00Z",
            "assets": [f"node_exporter-{v}.linux-amd64.tar.gz", "sha256sums.txt"],
            **kw,
        }

    gh.set_releases(
        "prometheus/node_exporter",
        [rel("1.8.0"), rel("1.9.0", draft=True), rel("1.10.0", prerelease=True), rel("1.11.0-rc.0")],
    )
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text("components:\n  node_exporter: {}\n")
    code, _, err = run("plan", "--config-dir", str(cfg), "--json")
    assert code == 0, err
    assert (
        json.loads((tmp_path / "plans" / "default.lock").read_text())["components"]["node_exporter"]["version"]
        == "1.8.0"
    )


def test_closed_stdout_is_not_an_internal_error(tmp_path: Path) -> None:
    """`obsplan plan ... | head -1`: the lock is written, then the reader goes away: exit 0, no traceback."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OBSPLAN_CACHE_DIR": str(tmp_path / "cache"), "OBSPLAN_NOW": "2026-11-22"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "obsplan",
            "plan",
            "--config-dir",
            str(root / "examples"),
            "--env",
            "staging",
            "--offline",
            "-o",
            str(tmp_path / "s.lock"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, err
    assert "internal error" not in err and (tmp_path / "s.lock").exists()
