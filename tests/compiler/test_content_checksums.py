"""Checksums are content facts: learned once, reused offline from the other locks of the plans folder and the
snapshot; promotion takes exactly another environment's versions, artifacts and checksums."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from obsplan.compiler.run import checksum_book
from obsplan.compiler.sources.known_checksums import folder_locks
from obsplan.compiler.sources.snapshot import SnapshotSource

from tests.compiler.test_scenarios import run
from tests.ghserver import FakeGitHub

CONFIG = """\
components:
  node_exporter: {}
  alertmanager: {}
environments:
  staging:
    current: {node_exporter: '1.7.0', alertmanager: '0.26.0'}
  production:
    offline_mode: true
    current: {node_exporter: '1.7.0', alertmanager: '0.26.0'}
    component_overrides:
      node_exporter: {version: '1.12.1'}
      alertmanager: {version: '0.28.1'}
  prod-promoted:
    offline_mode: true
    promote_from: staging
    current: {node_exporter: '1.7.0', alertmanager: '0.26.0'}
"""


def _arts(lock: dict, name: str) -> dict:  # type: ignore[type-arg]
    return lock["components"][name]["artifacts"]


def _staging(cfg: Path, out: Path) -> dict:  # type: ignore[type-arg]
    cfg.mkdir(exist_ok=True)
    (cfg / "versions.yaml").write_text(CONFIG)
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "staging", "-o", str(out / "staging.lock"))
    assert code == 0, err
    lock = json.loads((out / "staging.lock").read_text())
    assert _arts(lock, "node_exporter")["linux-amd64"]["checksum_status"] == "verified_upstream"
    return lock


def test_offline_plan_reuses_checksums_of_the_folders_other_locks(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    staging = _staging(tmp_path / "cfg", out)
    monkeypatch.setenv("OBSPLAN_CACHE_DIR", str(tmp_path / "empty-cache"))  # the checksum-file cache cannot help
    gh.clear_requests()
    code, _, err = run("plan", "--config-dir", str(tmp_path / "cfg"), "--env", "production", "-o", str(out / "p.lock"))
    assert code == 0, err
    assert gh.requests == []  # offline_mode: true
    prod = json.loads((out / "p.lock").read_text())
    node = _arts(prod, "node_exporter")["linux-amd64"]
    assert node["sha256"] == _arts(staging, "node_exporter")["linux-amd64"]["sha256"]
    assert node["checksum_status"] == "verified_upstream"
    assert node["checksum_origin"] == "staging.lock (environment staging)"
    am = _arts(prod, "alertmanager")["linux-amd64"]  # 0.28.1 is in no other lock: still missing, never invented
    assert am["sha256"] is None and am["checksum_status"] == "missing"
    # without the sibling lock (another folder), offline knows nothing
    code, _, err = run(
        "plan", "--config-dir", str(tmp_path / "cfg"), "--env", "production", "-o", str(tmp_path / "x.lock")
    )
    assert code == 0, err
    assert _arts(json.loads((tmp_path / "x.lock").read_text()), "node_exporter")["linux-amd64"]["sha256"] is None


def test_promote_from_takes_exactly_the_other_lock(
    gh: FakeGitHub, obsplan_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    staging = _staging(tmp_path / "cfg", out)
    monkeypatch.setenv("OBSPLAN_CACHE_DIR", str(tmp_path / "empty-cache"))
    code, _, err = run(
        "plan", "--config-dir", str(tmp_path / "cfg"), "--env", "prod-promoted", "-o", str(out / "pp.lock")
    )
    assert code == 0, err
    prod = json.loads((out / "pp.lock").read_text())
    for name in ("node_exporter", "alertmanager"):
        assert prod["components"][name]["version"] == staging["components"][name]["version"]
        assert _arts(prod, name) == _arts(staging, name)  # url, file name, sha256, checksum URL: identical
        assert prod["components"][name]["source"]["detail"] == "promoted from staging.lock (environment staging)"
    assert prod["inputs"]["promoted:staging.lock"] == staging["content_sha256"]
    steps = {s["id"]: s for s in prod["plan"]["steps"]}
    assert "promoted" in {r["code"] for r in steps["node_exporter@1.12.1"]["reasons"]}
    code, out_text, err = run(
        "plan", "--config-dir", str(tmp_path / "cfg"), "--env", "prod-promoted", "-o", str(out / "pp.lock"), "--check"
    )
    assert code == 0, out_text + err


def test_promotion_refused_naming_the_component(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = tmp_path / "cfg"
    _staging(cfg, out)
    (cfg / "versions.yaml").write_text(
        CONFIG.replace(
            "    promote_from: staging\n",
            "    promote_from: staging\n    component_overrides:\n      node_exporter: {exclude: ['1.12.1']}\n",
        )
    )
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "prod-promoted", "-o", str(out / "pp.lock"))
    assert code == 1, err
    assert "[promote-from] node_exporter: staging's 1.12.1 cannot be promoted here: it is in exclude" in err
    assert not (out / "pp.lock").exists()
    code, _, err = run(
        "plan", "--config-dir", str(cfg), "--env", "prod-promoted", "-o", str(tmp_path / "y" / "pp.lock")
    )
    assert code == 2 and "environments.prod-promoted.promote_from" in err and "no lock of environment 'staging'" in err


def test_snapshot_checksums_are_learned(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _staging(tmp_path / "cfg", out)
    sha = "ab" * 32
    snap = SnapshotSource(
        {
            "as_of": "2026-11-01",
            "repos": {},
            "checksums": {
                "alertmanager": {
                    "0.28.1": {"linux-amd64": {"filename": "alertmanager-0.28.1.linux-amd64.tar.gz", "sha256": sha}}
                }
            },
        }
    )
    book = checksum_book(folder_locks([out]), None, snap)
    known = book.lookup("alertmanager", "0.28.1", "linux-amd64", "alertmanager-0.28.1.linux-amd64.tar.gz")
    assert known is not None and known.sha256 == sha and known.origin == "embedded snapshot of 2026-11-01"
    assert book.lookup("alertmanager", "0.28.1", "linux-amd64", "other-name.tar.gz") is None
    assert book.lookup("node_exporter", "1.12.1", "linux-amd64", "node_exporter-1.12.1.linux-amd64.tar.gz")


def test_artifact_without_version_placed_by_the_release_tag(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    """Several Grafana projects publish `<name>-linux-amd64.zip` under each release tag."""
    gh.set_releases(
        "grafana/tempo-tool",
        [
            {"tag_name": f"v{v}", "assets": ["tempo-tool-linux-amd64.zip", "SHA256SUMS"]}
            for v in ("2.1.0", "2.0.3", "1.9.0")
        ],
    )
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    entry = (
        "components:\n  tempo-tool:\n    github_repo: grafana/tempo-tool\n"
        '    artifact: "tempo-tool-{os}-{arch}.zip"\n    checksums: SHA256SUMS\n    runtime: {port: 9411}\n'
    )
    (cfg / "versions.yaml").write_text(entry)
    code, _, err = run("plan", "--config-dir", str(cfg), "-o", str(tmp_path / "t.lock"))
    assert code == 0, err
    art = _arts(json.loads((tmp_path / "t.lock").read_text()), "tempo-tool")["linux-amd64"]
    assert art["url"].endswith("/v2.1.0/tempo-tool-linux-amd64.zip") and art["format"] == "zip"
    assert art["checksum_status"] == "verified_upstream" and len(art["sha256"]) == 64
    # a download URL that does not place the file under the tag would fetch one file for every release
    (cfg / "versions.yaml").write_text(entry + '    download_url: "https://example.org/{asset}"\n')
    code, _, err = run("plan", "--config-dir", str(cfg), "-o", str(tmp_path / "u.lock"))
    assert code == 2 and "components.tempo-tool.artifact" in err and "{tag}" in err


def test_snapshot_refresh_carries_the_folders_checksums(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = _staging(tmp_path / "cfg", out)
    code, _, err = run("snapshot", "refresh", "-o", str(tmp_path / "snap.json"), "--checksums-from", str(out))
    assert code == 0, err
    doc = json.loads((tmp_path / "snap.json").read_text())
    node = _arts(staging, "node_exporter")["linux-amd64"]
    assert doc["checksums"]["node_exporter"]["1.12.1"]["linux-amd64"]["sha256"] == node["sha256"]
    book = checksum_book([], None, SnapshotSource(doc))
    known = book.lookup("node_exporter", "1.12.1", "linux-amd64", node["filename"])
    assert known is not None and known.sha256 == node["sha256"] and known.origin == "embedded snapshot of 2026-11-22"


def test_a_lock_already_read_is_checked_not_read_again(tmp_path: Path) -> None:
    """`folder_locks(read=...)`: the previous lock `plan` read is verified from memory; a tampered one teaches
    nothing, as a tampered file does."""
    from obsplan.lock.lockfile import load_lock

    root = Path(__file__).resolve().parents[2]
    good = load_lock(root / "plans" / "staging.lock")
    folder = tmp_path / "plans"
    folder.mkdir()
    path = folder / "staging.lock"
    path.write_text("not JSON: the file is not read again")
    (found,) = folder_locks([folder], read={path.resolve(): good})
    assert found.lock is good and found.path == path
    tampered = good.model_copy(update={"environment": "elsewhere"})
    assert folder_locks([folder], read={path.resolve(): tampered}) == []
    assert folder_locks([folder]) == []  # read from disk: not a lock
