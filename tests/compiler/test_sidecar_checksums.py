"""Issue 19 item 6: the side-car form (docs/configuration.md) `checksums: "{url}.sha256"` plans (never exit 3) and locks the
sha256 the side-car gives; a placeholder obsplan does not know is exit 2 naming the file and key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from obsplan.cli.main import main
from tests.ghserver import FakeGitHub

REPO = "prometheus/node_exporter"
VERSION = "1.9.1"


def _config(tmp_path: Path, checksums: str) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir(exist_ok=True)
    (cfg / "versions.yaml").write_text(
        "global: {platforms: [linux-amd64]}\n"
        "components:\n"
        f"  node_exporter: {{strategy: pinned, version: '{VERSION}', checksums: '{checksums}'}}\n"
    )
    return cfg


def test_sidecar_checksums_template_plans_and_checks(obsplan_env: Path, gh: FakeGitHub, tmp_path: Path) -> None:
    tarball = f"node_exporter-{VERSION}.linux-amd64.tar.gz"
    data = b"the real archive bytes"
    digest = hashlib.sha256(data).hexdigest()
    gh.add_asset(REPO, f"v{VERSION}", tarball, data)
    gh.add_asset(REPO, f"v{VERSION}", f"{tarball}.sha256", f"{digest}  {tarball}\n".encode())
    cfg = _config(tmp_path, "{url}.sha256")
    lock = tmp_path / "plans" / "default.lock"
    args = ["plan", "--config-dir", str(cfg), "--env", "default", "-o", str(lock)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    art = json.loads(lock.read_text())["components"]["node_exporter"]["artifacts"]["linux-amd64"]
    assert art["sha256"] == digest and art["checksum_url"].endswith(f"/{tarball}.sha256")
    assert art["checksum_status"] == "verified_upstream"
    res = CliRunner().invoke(main, [*args, "--check"])
    assert res.exit_code == 0, res.output


def test_an_unknown_placeholder_in_checksums_is_bad_input(obsplan_env: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, "{URL}.sha256")
    lock = tmp_path / "x.lock"
    res = CliRunner().invoke(main, ["plan", "--config-dir", str(cfg), "--env", "default", "--offline", "-o", str(lock)])
    assert res.exit_code == 2, res.output
    assert "versions.yaml: components.node_exporter.checksums" in res.output and "unknown field {URL}" in res.output
    assert not lock.exists()
