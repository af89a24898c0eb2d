"""Issue 19 item 1 as an operator lives it, nothing hand-built: mysqld_exporter 0.14.0 runs by hand with its
credentials in its unit (DATA_SOURCE_NAME); versions.yaml says `mysqld_exporter: {strategy: latest}` and
nothing about credentials. `obsplan plan` plans it (the lock: settings from the host; the report: where from),
`obsplan apply` takes them from the running installation and 0.17.2 serves with obsplan's my.cnf, a second
apply is a no-op, `status` shows it serving and `obsplan rollback` puts the adopted 0.14.0 back."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import httpx
import pytest
from obsplan.executor.host.probes import served_build_info

from tests.executor.conftest import PLATFORM, free_port
from tests.executor.test_e2e_daytwo import _hand_started
from tests.ghserver import FakeGitHub

from .conftest import cli

pytestmark = pytest.mark.e2e

REPO = "prometheus/mysqld_exporter"
DSN = "exporter:s3cret@tcp(127.0.0.1:3306)/"


def _served(port: int) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, "mysqld_exporter_build_info")


def _publish(gh: FakeGitHub, releases: dict[tuple[str, str], Path]) -> None:
    versions = (("0.14.0", "2022-03-08T00:00:00Z"), ("0.17.2", "2025-02-26T00:00:00Z"))
    gh.set_releases(
        REPO,
        [
            {
                "tag_name": f"v{v}",
                "created_at": d,
                "assets": [f"mysqld_exporter-{v}.{PLATFORM}.tar.gz", "sha256sums.txt"],
            }
            for v, d in versions
        ],
    )
    for v, _ in versions:
        data = releases[("mysqld_exporter", v)].read_bytes()
        gh.add_asset(REPO, f"v{v}", f"mysqld_exporter-{v}.{PLATFORM}.tar.gz", data)


def _hand_install(releases: dict[tuple[str, str], Path], root: Path, port: int) -> Path:
    binary = root / "usr/local/bin/mysqld_exporter"
    with tarfile.open(releases[("mysqld_exporter", "0.14.0")]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/mysqld_exporter"))
        data = tar.extractfile(member)
        assert data is not None
        binary.parent.mkdir(parents=True)
        binary.write_bytes(data.read())
    binary.chmod(0o755)
    unit = root / "etc/systemd/system/mysqld_exporter.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(
        f'[Service]\nEnvironment="DATA_SOURCE_NAME={DSN}"\nExecStart={binary} --web.listen-address=:{port}\n'
    )
    return binary


def test_plan_without_credentials_apply_takes_them_from_the_host(
    releases: dict[tuple[str, str], Path], root: Path, tmp_path: Path
) -> None:
    port = free_port()
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(
        f"global:\n  platforms: [{PLATFORM}]\ncomponents:\n  mysqld_exporter:\n    strategy: latest\n"
        f"    runtime: {{port: {port}}}\nenvironments:\n  prod:\n    current: {{mysqld_exporter: '0.14.0'}}\n"
    )
    binary = _hand_install(releases, root, port)
    host = ["--root", str(root), "--service-manager", "supervisord"]
    gh = FakeGitHub().start()
    env = gh.plan_env(tmp_path / "cache")
    lock = tmp_path / "prod.lock"
    try:
        _publish(gh, releases)
        allow = ["--allow", "mysqld-exporter-0.15-dsn-removed"]  # 0.14 → 0.17 crosses the DSN removal
        done = cli("plan", "--config-dir", str(cfg), "--env", "prod", "-o", str(lock), *allow, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        [step] = json.loads(lock.read_text())["plan"]["steps"]
        assert (step["from_version"], step["to_version"], step["settings_from_host"]) == ("0.14.0", "0.17.2", ["mysql"])
        assert "`obsplan apply` takes them from the running installation" in lock.with_suffix(".md").read_text()

        os.environ["DATA_SOURCE_NAME"] = DSN
        try:
            with _hand_started(binary, port) as hand:
                done = cli("apply", str(lock), *host, "--json", env=env)
                assert done.returncode == 0, done.stdout + done.stderr
                assert hand.wait(timeout=20) is not None  # taken over by obsplan
        finally:
            del os.environ["DATA_SOURCE_NAME"]
        assert '"settings_from_host"' in done.stdout and "s3cret" not in done.stdout
        assert _served(port) == "0.17.2"
        assert "password=s3cret" in (root / "etc/mysqld_exporter/my.cnf").read_text()
        again = cli("apply", str(lock), *host, "--json", env=env)
        assert again.returncode == 0 and '"nothing_to_do"' in again.stdout, again.stdout
    finally:
        gh.stop()
    [row] = json.loads(cli("status", *host, "--json", env=env).stdout)
    assert (row["served_version"], row["health"]) == ("0.17.2", "serving")
    back = cli("rollback", "mysqld_exporter", *host, "--health-timeout", "30", env=env)
    assert back.returncode == 0, back.stdout + back.stderr
    assert _served(port) == "0.14.0"  # the adopted version, run by obsplan with the credentials it had
