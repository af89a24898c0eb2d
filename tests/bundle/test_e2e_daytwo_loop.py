"""The operator's second week, with nothing hand-written: pin node_exporter 1.5.0 → `obsplan plan` (local
GitHub server, real Debian binaries) → apply → re-pin 1.9.0 → plan over the same lock → apply, with no
`current:` anywhere; and `obsplan facts` of that host read back by `obsplan plan --facts`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bundle.test_e2e_from_plan import _publish, _served
from tests.executor.conftest import PLATFORM, free_port
from tests.ghserver import FakeGitHub

from .conftest import cli

pytestmark = pytest.mark.e2e


def _config(cfg: Path, port: int, pin: str) -> None:
    cfg.mkdir(exist_ok=True)
    (cfg / "versions.yaml").write_text(
        f"global:\n  platforms: [{PLATFORM}]\ncomponents:\n  node_exporter:\n    runtime: {{port: {port}}}\n"
        f"environments:\n  lab:\n    component_overrides:\n      node_exporter: {{version: '{pin}'}}\n"
        "  fresh: {}\n"
    )


def test_plan_apply_repin_plan_apply(releases: dict[tuple[str, str], Path], root: Path, tmp_path: Path) -> None:
    port = free_port()
    cfg, lab = tmp_path / "cfg", tmp_path / "lab.lock"
    gh = FakeGitHub().start()
    env = gh.plan_env(tmp_path / "cache")
    apply = ["--root", str(root), "--service-manager", "supervisord", "--mode", "fast"]
    try:
        _publish(gh, releases)
        _config(cfg, port, "1.5.0")
        done = cli("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lab), env=env)
        assert done.returncode == 0, done.stderr
        done = cli("apply", str(lab), *apply, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _served(port) == "1.5.0"

        # the host's facts, read back by the compiler: a plan without any lock starts from what the host serves
        facts = tmp_path / "host.json"
        done = cli("facts", "--root", str(root), "--lock", str(lab), "-o", str(facts), env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(facts.read_text())["components"]["node_exporter"]["served"] == "1.5.0"
        fresh = tmp_path / "fresh.lock"
        done = cli("plan", "--config-dir", str(cfg), "--env", "fresh", "--facts", str(facts), "-o", str(fresh), env=env)
        assert done.returncode == 0, done.stderr
        [step] = json.loads(fresh.read_text())["plan"]["steps"]
        assert (step["from_version"], step["to_version"]) == ("1.5.0", "1.9.0")

        _config(cfg, port, "1.9.0")  # re-pin; the previous lab.lock is the only memory of what was applied
        done = cli("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lab), env=env)
        assert done.returncode == 0, done.stderr
        [step] = json.loads(lab.read_text())["plan"]["steps"]
        assert (step["from_version"], step["to_version"]) == ("1.5.0", "1.9.0")
        done = cli("apply", str(lab), *apply, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _served(port) == "1.9.0"
    finally:
        gh.stop()
    assert "current:" not in (cfg / "versions.yaml").read_text()
