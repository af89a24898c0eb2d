"""Day two with real binaries and no hand-written `current:`: pin node_exporter 1.5.0 → plan → apply (serves
1.5.0) → re-pin 1.9.0 → plan into the same lock (the previous target is assumed applied) → apply (serves 1.9.0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.executor.conftest import PLATFORM, free_port
from tests.ghserver import FakeGitHub

from .conftest import cli
from .test_e2e_from_plan import _publish, _served

pytestmark = pytest.mark.e2e


def _pin(cfg: Path, port: int, version: str) -> None:
    (cfg / "versions.yaml").write_text(
        f"global:\n  platforms: [{PLATFORM}]\ncomponents:\n  node_exporter:\n    strategy: pinned\n"
        f"    version: '{version}'\n    runtime: {{port: {port}}}\nenvironments:\n  lab: {{}}\n"
    )


def test_plan_apply_repin_plan_apply(releases: dict[tuple[str, str], Path], root: Path, tmp_path: Path) -> None:
    port = free_port()
    cfg, lock = tmp_path / "cfg", tmp_path / "lab.lock"
    cfg.mkdir()
    gh = FakeGitHub().start()
    env = gh.plan_env(tmp_path / "cache")
    apply = ("apply", str(lock), "--root", str(root), "--service-manager", "supervisord")
    try:
        _publish(gh, releases)
        for version, from_version in (("1.5.0", None), ("1.9.0", "1.5.0")):
            _pin(cfg, port, version)
            done = cli("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), env=env)
            assert done.returncode == 0, done.stderr
            [step] = json.loads(lock.read_text())["plan"]["steps"]
            assert (step["from_version"], step["to_version"]) == (from_version, version)
            done = cli(*apply, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
            assert _served(port) == version
        done = cli(*apply, env=env)  # the same lock again: nothing to do
        assert done.returncode == 0, done.stdout + done.stderr
        assert _served(port) == "1.9.0"
        host = ("--root", str(root), "--service-manager", "supervisord")
        done = cli("rollback", "node_exporter", *host, "--mode", "fast", env=env)  # the operator goes back
        assert done.returncode == 0, done.stdout + done.stderr
        assert _served(port) == "1.5.0"
        [row] = json.loads(cli("status", *host, "--json", env=env).stdout)
        assert (row["installed_version"], row["target_version"]) == ("1.5.0", "1.9.0")
    finally:
        gh.stop()
