"""Release age (exactly at the threshold), security fixes skipping it, risk levels and auto-approval."""

from __future__ import annotations

import json
from pathlib import Path

from tests.compiler.test_scenarios import run
from tests.conftest import forget_releases
from tests.ghserver import FakeGitHub

# The tests' clock is 2026-11-22 (tests/conftest.py NOW).


def _am(v: str, date: str) -> dict[str, object]:
    return {
        "tag_name": f"v{v}",
        "created_at": f"{date}T00:00:00Z",
        "published_at": f"{date}T00:00:00Z",
        "assets": [f"alertmanager-{v}.linux-amd64.tar.gz", "sha256sums.txt"],
    }


def _config(tmp_path: Path, policy: str, current: str = "0.26.0") -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(
        f"components:\n  alertmanager: {{}}\nenvironments:\n  prod:\n    current: {{alertmanager: '{current}'}}\n"
    )
    (cfg / "upgrade-policy.yaml").write_text(policy)
    return cfg


def _lock(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((tmp_path / "plans" / "prod.lock").read_text())


def test_release_age_exactly_at_threshold_is_eligible(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    gh.set_releases(
        "prometheus/alertmanager",
        [_am("0.26.1", "2026-10-01"), _am("0.26.2", "2026-11-15"), _am("0.26.3", "2026-11-16")],
    )
    cfg = _config(tmp_path, "minimum_release_age_days: 7\n")
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "prod")
    assert code == 0, err
    comp = _lock(tmp_path)["components"]["alertmanager"]
    assert comp["version"] == "0.26.2"  # 7 days old today: eligible; 0.26.3 (6 days) waits
    step = _lock(tmp_path)["plan"]["steps"][0]
    waiting = [r["detail"] for r in step["reasons"] if r["code"] == "min_age_not_met"]
    assert waiting == ["0.26.3 is newer but younger than minimum_release_age_days; eligible on 2026-11-23"]


def test_security_fix_skips_release_age(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    gh.set_releases("prometheus/alertmanager", [_am("0.26.1", "2026-10-01"), _am("0.26.2", "2026-11-20")])
    adv = tmp_path / "osv"
    adv.mkdir()
    (adv / "TEST-0001.json").write_text(
        json.dumps(
            {
                "schema_version": "1.6.0",
                "id": "TEST-0001",
                "aliases": ["CVE-2026-99999"],
                "summary": "test advisory",
                "modified": "2026-11-20T00:00:00Z",
                "affected": [
                    {
                        "package": {"name": "github.com/prometheus/alertmanager", "ecosystem": "Go"},
                        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.26.2"}]}],
                    }
                ],
            }
        )
    )
    cfg = _config(tmp_path, "minimum_release_age_days: 7\nadvisories: [../osv]\n")
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "prod")
    assert code == 0, err
    lock = _lock(tmp_path)
    assert lock["components"]["alertmanager"]["version"] == "0.26.2"
    step = lock["plan"]["steps"][0]
    codes = [r["code"] for r in step["reasons"]]
    assert "security_fix_skips_min_age" in codes and "security_fix" in codes and step["priority"] == "security"
    [entry] = lock["components"]["alertmanager"]["advisories"]
    assert (entry["id"], entry["affects_current"], entry["affects_target"], entry["fixed_in"]) == (
        "TEST-0001",
        True,
        False,
        "0.26.2",
    )


def test_risk_levels_and_auto_approval(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    gh.set_releases("prometheus/alertmanager", [_am("0.33.1", "2026-07-04")])
    cfg = _config(tmp_path, "auto_upgrade:\n  enabled: true\n  allowed_risk_levels: [low]\n", current="0.33.0")
    assert run("plan", "--config-dir", str(cfg), "--env", "prod")[0] == 0
    step = _lock(tmp_path)["plan"]["steps"][0]
    assert step["risk"] == "low" and step["approval"] == "auto_upgrade allows low risk"
    gh.set_releases("prometheus/alertmanager", [_am("0.33.1", "2026-07-04"), _am("0.34.0", "2026-08-16")])
    forget_releases(obsplan_env, gh, "prometheus/alertmanager")  # else the fresh cache answers
    (cfg / "upgrade-policy.yaml").write_text(
        "auto_upgrade:\n  enabled: true\n  allowed_risk_levels: [low]\napprovals: [alertmanager@0.34.0]\n"
    )
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "prod", "--upgrade")
    assert code == 0, err
    step = _lock(tmp_path)["plan"]["steps"][0]
    assert step["risk"] == "medium" and step["approval"] == "listed in the policy's approvals"
    assert {"minor_bump", "changelog_breaking"} <= {r["code"] for r in step["reasons"]}


def test_osv_api_online(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A local OSV-compatible server answers /v1/query; its record lands in the lock, the answer is cached."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    queries: list[dict[str, object]] = []
    record = {
        "id": "TEST-OSV-1",
        "aliases": ["CVE-2026-11111"],
        "modified": "2026-11-01T00:00:00Z",
        "affected": [
            {
                "package": {"name": "github.com/prometheus/alertmanager", "ecosystem": "Go"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.33.1"}]}],
            }
        ],
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            queries.append(body)
            out = json.dumps({"vulns": [record]} if body["version"] == "v0.33.0" else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # a plan sends its OSV queries at once; the default backlog (5) refuses some

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OSV_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
        gh.set_releases("prometheus/alertmanager", [_am("0.33.1", "2026-07-04")])
        cfg = _config(tmp_path, "osv_api: {enabled: true}\n", current="0.33.0")
        code, _, err = run("plan", "--config-dir", str(cfg), "--env", "prod")
        assert code == 0, err
        [entry] = _lock(tmp_path)["components"]["alertmanager"]["advisories"]
        assert (entry["id"], entry["affects_current"], entry["affects_target"]) == ("TEST-OSV-1", True, False)
        assert {q["version"] for q in queries} == {"v0.33.0", "v0.33.1"}
        asked = len(queries)
        assert run("plan", "--config-dir", str(cfg), "--env", "prod")[0] == 0
        assert len(queries) == asked  # cached within the TTL
        code, _, _ = run("plan", "--config-dir", str(cfg), "--env", "prod", "--offline")
        assert code == 0 and len(queries) == asked  # offline never asks
    finally:
        server.shutdown()
        server.server_close()
