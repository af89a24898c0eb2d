"""The seeds' own configuration works as written: seed 000's `global.safety` block (each key honoured) and
seed 003's range in `version`."""

from __future__ import annotations

import json
from pathlib import Path

import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor.reporters import RecordingReporter

from obsplan.lock.lockfile import Lock
from obsplan.safeio.fsio import write_atomic
from tests.compiler.test_scenarios import run
from tests.conftest import write_config
from tests.ghserver import FakeGitHub

SEED_000_SAFETY = """\
global:
  default_strategy: latest
  safety:
    compatibility_check: true
    breaking_change_detection: true
    security_advisory_check: true
    require_checksum_verification: true

    auto_upgrade:
      enabled: false
      allowed_risk_levels: [low]  # Only auto-approve low risk

    rollback:
      auto_rollback_on_failure: true
      retention_count: 3
      retention_days: 30
"""


def _versions(cfg: Path, safety: str, rest: str) -> Path:
    cfg.mkdir(exist_ok=True)
    (cfg / "versions.yaml").write_text(safety + rest)
    return cfg


def _plan(cfg: Path, env: str, lock: Path, *extra: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", env, "-o", str(lock), *extra)
    return code, (json.loads(lock.read_text()) if code == 0 else {}), out + err


NODE = "components:\n  node_exporter: {}\nenvironments:\n  prod:\n    current: {node_exporter: '1.7.0'}\n"


def test_seed_000_safety_block_verbatim_and_its_rollback_keys_reach_the_lock(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path
) -> None:
    cfg = _versions(tmp_path / "cfg", SEED_000_SAFETY, NODE)
    code, lock, out = _plan(cfg, "prod", tmp_path / "a.lock")
    assert code == 0, out
    hp = lock["host_policy"]
    assert (hp["keep_versions"], hp["retention_days"], hp["auto_rollback_on_failure"]) == (3, 30, True)
    assert hp["require_checksum_verification"] is True
    assert lock["plan"]["steps"][0]["approval"] is None
    changed = (
        SEED_000_SAFETY.replace("retention_count: 3", "retention_count: 5")
        .replace("retention_days: 30", "retention_days: 9")
        .replace("auto_rollback_on_failure: true", "auto_rollback_on_failure: false")
        .replace("enabled: false", "enabled: true")
        .replace("[low]", "[low, medium]")
    )
    (cfg / "upgrade-policy.yaml").write_text("rollback: {keep_versions: 2, retention_days: 1}\n")  # seed block wins
    _versions(cfg, changed, NODE)
    code, lock, out = _plan(cfg, "prod", tmp_path / "b.lock")
    assert code == 0, out
    hp = lock["host_policy"]
    assert (hp["keep_versions"], hp["retention_days"], hp["auto_rollback_on_failure"]) == (5, 9, False)
    step = lock["plan"]["steps"][0]
    assert step["risk"] == "medium" and step["approval"] == "auto_upgrade allows medium risk"


def test_unknown_key_in_the_safety_block_names_the_allowed_ones(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path
) -> None:
    cfg = _versions(tmp_path / "cfg", SEED_000_SAFETY.replace("compatibility_check", "compat_check"), NODE)
    code, _, out = _plan(cfg, "prod", tmp_path / "a.lock")
    assert code == 2 and "global.safety.compat_check" in out and "compatibility_check" in out


def test_compatibility_check_off_lets_overridable_rules_through_as_warnings(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "cfg", "gate-refused", gh)
    base = (cfg / "versions.yaml").read_text()
    code, _, out = _plan(cfg, "prod", tmp_path / "a.lock")
    assert code == 1 and "[mysqld-exporter-0.15-dsn-removed]" in out
    (cfg / "versions.yaml").write_text("global:\n  safety: {compatibility_check: false}\n" + base)
    code, lock, out = _plan(cfg, "prod", tmp_path / "a.lock")
    assert code == 0, out
    warnings = " ".join(lock["components"]["mysqld_exporter"]["warnings"])
    assert "compatibility_check is off, not refused: [mysqld-exporter-0.15-dsn-removed]" in warnings
    # mandatory rules still refuse: Prometheus 2.x must stop at 2.55.x even with the check off
    (cfg / "versions.yaml").write_text(
        "global:\n  safety: {compatibility_check: false}\ncomponents:\n  prometheus:\n    exclude: ['2.55.0', '2.55.1']\n"
        "environments:\n  prod:\n    current: {prometheus: '2.48.1'}\n"
    )
    code, _, out = _plan(cfg, "prod", tmp_path / "c.lock")
    assert code == 1 and "must pass through 2.55.x" in out


def test_breaking_change_detection_off_parses_no_changelog(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    code, lock, out = _plan(cfg, "staging", tmp_path / "a.lock")
    assert code == 0, out
    step = next(s for s in lock["plan"]["steps"] if s["id"] == "prometheus@3.14.0")
    assert step["breaking_changes"]
    text = (
        (cfg / "versions.yaml")
        .read_text()
        .replace("global:\n", "global:\n  safety: {breaking_change_detection: false}\n")
    )
    (cfg / "versions.yaml").write_text(text)
    gh.clear_requests()
    code, lock, out = _plan(cfg, "staging", tmp_path / "b.lock")
    assert code == 0, out
    assert all(s["breaking_changes"] == [] for s in lock["plan"]["steps"])
    assert gh.count("/repos/prometheus/prometheus/contents") == 0  # no CHANGELOG fetched at all


def test_security_advisory_check_off_reads_no_advisory(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    adv = tmp_path / "osv"
    adv.mkdir()
    (adv / "TEST-0002.json").write_text(
        json.dumps(
            {
                "id": "TEST-0002",
                "modified": "2026-11-20T00:00:00Z",
                "affected": [
                    {
                        "package": {"name": "github.com/prometheus/node_exporter", "ecosystem": "Go"},
                        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.8.0"}]}],
                    }
                ],
            }
        )
    )
    cfg = _versions(tmp_path / "cfg", "", NODE)
    (cfg / "upgrade-policy.yaml").write_text("advisories: [../osv]\n")
    code, lock, out = _plan(cfg, "prod", tmp_path / "a.lock")
    assert code == 0, out
    assert [a["id"] for a in lock["components"]["node_exporter"]["advisories"]] == ["TEST-0002"]
    _versions(cfg, "global:\n  safety: {security_advisory_check: false}\n", NODE)
    code, lock, out = _plan(cfg, "prod", tmp_path / "b.lock")
    assert code == 0, out
    assert lock["components"]["node_exporter"]["advisories"] == []
    code, _, out = _plan(cfg, "prod", tmp_path / "c.lock", "--advisories", str(adv))
    assert code == 2 and "security_advisory_check is false" in out


def _unverified_lock(path: Path, lock: dict, keep_url: bool = False) -> Path:  # type: ignore[type-arg]
    """The compiled lock with its checksums dropped (as an offline plan without any known sha256 writes it)."""
    holders = lock["plan"]["steps"] + list(lock["components"].values())
    for s in holders:
        for a in s["artifacts"].values():
            a["sha256"], a["checksum_status"] = None, "missing"
            if not keep_url:
                a["url"] = "http://127.0.0.1:9/unreachable.tar.gz"
    write_atomic(path, Lock.model_validate(lock).sealed().to_json())
    return path


def test_require_checksum_verification_reaches_apply_and_check(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = NODE.replace("'1.7.0'", "null")  # a fresh host: nothing installed
    cfg = _versions(tmp_path / "cfg", "global:\n  safety: {require_checksum_verification: false}\n", fresh)
    code, lock, out = _plan(cfg, "prod", tmp_path / "off.lock")
    assert code == 0, out
    assert lock["host_policy"]["require_checksum_verification"] is False
    off = _unverified_lock(tmp_path / "off.lock", lock)
    lock["host_policy"]["require_checksum_verification"] = True
    on = _unverified_lock(tmp_path / "on.lock", lock)
    refused = engine.apply(on, engine.ApplyOptions(root=tmp_path / "r1", dry_run=True), rec1 := RecordingReporter())
    assert refused.exit_code == 1 and rec1.find("step_failed")[0].metadata["reason"] == "missing_sha256"
    allowed = engine.apply(off, engine.ApplyOptions(root=tmp_path / "r2", dry_run=True), rec2 := RecordingReporter())
    assert allowed.exit_code == 0
    assert [e.metadata["code"] for e in rec2.find("warning")] == ["unverified_artifact"]
    # --check asks whether the lock says what the inputs decide: a sha256 the inputs cannot give is not a
    # difference (apply's refusal above says it), --require-checksums makes it one whatever the policy says
    monkeypatch.setenv("OBSPLAN_CACHE_DIR", str(tmp_path / "empty-cache"))  # no checksum file known offline
    unchecked = tmp_path / "plans" / "unchecked.lock"
    code, lock, out = _plan(cfg, "prod", unchecked, "--offline")
    assert code == 0, out
    no_sha = _unverified_lock(unchecked, lock, keep_url=True)
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "prod", "-o", str(no_sha), "--check")
    assert code == 0, out + err
    assert "no sha256" in err
    args = ("plan", "--config-dir", str(cfg), "--env", "prod", "-o", str(no_sha), "--check", "--require-checksums")
    code, out, err = run(*args)
    assert code == 1 and "sha256 is missing" in out


def test_seed_003_range_in_version(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = _versions(
        tmp_path / "cfg",
        "",
        'components:\n  prometheus:\n    strategy: pinned    # Exact version for stability\n    version: "2.48.1"\n'
        "  node_exporter:\n    strategy: latest    # Always fetch latest stable\n"
        '  loki:\n    strategy: range     # Semantic version range\n    version: ">=3.0.0 <4.0.0"\n'
        "  grafana:\n    strategy: lts       # Latest LTS version\n",
    )
    code, lock, out = _plan(cfg, "default", tmp_path / "a.lock")
    assert code == 0, out
    assert lock["components"]["loki"]["version"] == "3.7.6"
    assert lock["components"]["loki"]["strategy"] == "range"
    reasons = [r["code"] for s in lock["plan"]["steps"] if s["component"] == "loki" for r in s["reasons"]]
    assert "newest_in_range" in reasons
    (cfg / "versions.yaml").write_text('components:\n  loki:\n    strategy: latest\n    version: ">=3.0.0 <4.0.0"\n')
    code, _, out = _plan(cfg, "default", tmp_path / "b.lock")
    assert code == 2 and "components.loki" in out and "version_range" in out
    (cfg / "versions.yaml").write_text("components:\n  loki:\n    strategy: range\n")
    code, _, out = _plan(cfg, "default", tmp_path / "b.lock")
    assert code == 2 and 'version: ">=2.9.0 <3.0.0"' in out and "version_range" in out
