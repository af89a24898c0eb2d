"""The whole pipeline with nothing hand-built: `obsplan plan` against the local GitHub-compatible server (real
Debian node_exporter binaries published as release assets with a generated sha256sums.txt) → `obsplan apply`
→ re-plan → `obsplan bundle` → the server is stopped → `obsplan apply --bundle` → 1.9.0 serves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from obsplan.executor.host.probes import served_build_info

from tests.executor.conftest import PLATFORM, free_port
from tests.ghserver import FakeGitHub

from .conftest import cli

pytestmark = pytest.mark.e2e

REPO = "prometheus/node_exporter"


def _served(port: int) -> str | None:
    with httpx.Client() as client:
        return served_build_info(client, port, "node_exporter_build_info")


def _publish(gh: FakeGitHub, releases: dict[tuple[str, str], Path]) -> None:
    gh.set_releases(
        REPO,
        [
            {
                "tag_name": f"v{v}",
                "created_at": date,
                "assets": [f"node_exporter-{v}.{PLATFORM}.tar.gz", "sha256sums.txt"],
            }
            for v, date in (("1.5.0", "2022-11-29T00:00:00Z"), ("1.9.0", "2025-02-17T00:00:00Z"))
        ],
    )
    for v in ("1.5.0", "1.9.0"):
        gh.add_asset(REPO, f"v{v}", f"node_exporter-{v}.{PLATFORM}.tar.gz", releases[("node_exporter", v)].read_bytes())


def test_plan_apply_bundle_apply_offline(releases: dict[tuple[str, str], Path], root: Path, tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(
        f"global:\n  platforms: [{PLATFORM}]\ncomponents:\n  node_exporter:\n    runtime: {{port: {port}}}\n"
        "environments:\n  first:\n    component_overrides:\n      node_exporter: {version: '1.5.0'}\n"
        "  prod:\n    current: {node_exporter: '1.5.0'}\n"
    )
    gh = FakeGitHub().start()
    env = gh.plan_env(tmp_path / "cache")
    try:
        _publish(gh, releases)
        first = tmp_path / "first.lock"
        done = cli("plan", "--config-dir", str(cfg), "--env", "first", "-o", str(first), env=env)
        assert done.returncode == 0, done.stderr
        done = cli("apply", str(first), "--root", str(root), "--service-manager", "supervisord", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _served(port) == "1.5.0"

        prod = tmp_path / "prod.lock"
        done = cli("plan", "--config-dir", str(cfg), "--env", "prod", "-o", str(prod), env=env)
        assert done.returncode == 0, done.stderr
        lock = json.loads(prod.read_text())
        [step] = lock["plan"]["steps"]
        assert (step["from_version"], step["to_version"]) == ("1.5.0", "1.9.0")
        assert step["artifacts"][PLATFORM]["sha256"]  # taken from the generated sha256sums.txt
        done = cli("plan", "--config-dir", str(cfg), "--env", "prod", "-o", str(prod), "--check", env=env)
        assert done.returncode == 0, done.stdout

        bundle = tmp_path / "bundle"
        done = cli("bundle", str(prod), "-o", str(bundle), env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        gh.stop()
    requests_before = len(gh.requests)

    done = cli(
        "apply", str(prod), "--bundle", str(bundle), "--root", str(root), "--service-manager", "supervisord", env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _served(port) == "1.9.0"
    assert len(gh.requests) == requests_before
    done = cli("status", "--root", str(root), "--json", env=env)
    assert done.returncode == 0 and "1.9.0" in done.stdout
