"""Issue 19 items 10 and 11, as operators live them: `obsplan plan` (against the local GitHub-compatible
server) → `obsplan apply` under the suite's real supervisord, with small stand-in binaries.

Seed 003's phases are the lock's (exporters, prometheus — Alertmanager before Prometheus —, dashboards), and
today's names stay aliases. When Alertmanager fails, Prometheus 3 (which the matrix says needs it) is held
back, and the summary says so and why; the earlier and later phases' steps that do not depend on it run.
A re-run retries only the failed component; `--component prometheus` runs once what it needs is done."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from tests.bundle.conftest import cli
from tests.executor import fetch_debs
from tests.executor.conftest import PLATFORM, free_port
from tests.executor.test_e2e_fake_services import FAKE
from tests.ghserver import FakeGitHub

pytestmark = pytest.mark.e2e

# name → (repo, version, binaries in the archive, health path)
STACK = {
    "node_exporter": ("prometheus/node_exporter", "1.9.0", ("node_exporter",), "/metrics"),
    "alertmanager": ("prometheus/alertmanager", "0.28.1", ("alertmanager", "amtool"), "/-/ready"),
    "prometheus": ("prometheus/prometheus", "3.5.0", ("prometheus", "promtool"), "/-/ready"),
    "blackbox_exporter": ("prometheus/blackbox_exporter", "0.25.0", ("blackbox_exporter",), "/metrics"),
}


def _fake(name: str, version: str, health: str, fail_while: Path) -> bytes:
    """FAKE, but exits at start (a crash) while the file `fail_while` exists."""
    script = FAKE.format(python=sys.executable, name=name, version=version, health=health)
    check = f"import os\nif args[:1] not in (['--version'], ['-version']) and os.path.exists({str(fail_while)!r}):\n"
    check += "    sys.exit('told to fail')\n"
    return script.replace("args = sys.argv[1:]\n", "args = sys.argv[1:]\n" + check, 1).encode()


def _publish(gh: FakeGitHub, tmp_path: Path, fail_while: Path) -> None:
    gh.set_releases(
        "prometheus/blackbox_exporter",
        [{"tag_name": "v0.25.0", "assets": [f"blackbox_exporter-0.25.0.{PLATFORM}.tar.gz", "sha256sums.txt"]}],
    )
    for name, (repo, version, binaries, health) in STACK.items():
        script = _fake(name, version, health, fail_while if name == "alertmanager" else tmp_path / "never")
        files = dict.fromkeys(binaries, script)
        flat = name == "blackbox_exporter"  # a custom component's default glob finds its binary at the root
        tarball = fetch_debs.make_tarball(tmp_path / "fake" / name, name, version, files, flat=flat)
        gh.add_asset(repo, f"v{version}", f"{name}-{version}.{PLATFORM}.tar.gz", tarball.read_bytes())


def _config(cfg: Path, ports: dict[str, int]) -> None:
    cfg.mkdir()
    lines = [f"global:\n  platforms: [{PLATFORM}]\ncomponents:"]
    for name, (repo, version, _b, _h) in STACK.items():
        extra = ""
        if name == "blackbox_exporter":
            extra = f", github_repo: {repo}, artifact: 'blackbox_exporter-{{version}}.{{os}}-{{arch}}.tar.gz', "
            extra += "checksums: sha256sums.txt, phase: dashboards"
        lines.append(f"  {name}: {{strategy: pinned, version: '{version}', runtime: {{port: {ports[name]}}}{extra}}}")
    (cfg / "versions.yaml").write_text("\n".join(lines) + "\n")


OUTCOMES = {"step_done": "ok", "up_to_date": "up_to_date", "step_skipped": "skipped", "rolled_back": "rolled_back"}


def _statuses(out: str) -> dict[str, str]:
    """component → how its step ended, from the events of `apply --json`."""
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return {e["component"]: OUTCOMES[e["event"]] for e in events if e["event"] in OUTCOMES}


def _serves(port: int, version: str) -> bool:
    try:
        return f'version="{version}"' in httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).text
    except httpx.HTTPError:
        return False


def test_a_failed_component_holds_back_only_what_needs_it(root: Path, tmp_path: Path) -> None:
    ports = {name: free_port() for name in STACK}
    fail_while = tmp_path / "alertmanager-fails"
    fail_while.touch()
    cfg, lock = tmp_path / "cfg", tmp_path / "plans" / "prod.lock"
    _config(cfg, ports)
    with FakeGitHub() as gh:  # up for the whole sequence: apply downloads the artifacts from it
        _sequence(gh, tmp_path, cfg, lock, root, ports, fail_while)


def _sequence(
    gh: FakeGitHub, tmp_path: Path, cfg: Path, lock: Path, root: Path, ports: dict[str, int], fail_while: Path
) -> None:
    env = gh.plan_env(tmp_path / "cache")
    _publish(gh, tmp_path, fail_while)
    done = cli("plan", "--config-dir", str(cfg), "--env", "default", "-o", str(lock), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(lock.read_text())
    assert data["plan"]["phases"] == ["exporters", "prometheus", "loki", "dashboards"]
    assert data["plan"]["phase_aliases"] == {"core": "prometheus", "logs": "loki"}
    steps = {s["component"]: s for s in data["plan"]["steps"]}
    assert [s["component"] for s in data["plan"]["steps"]] == [
        "node_exporter",
        "alertmanager",
        "prometheus",
        "blackbox_exporter",
    ]
    assert steps["prometheus"]["requires"] == [steps["alertmanager"]["id"]]  # the matrix; not the phase order
    apply = ("apply", str(lock), "--root", str(root), "--service-manager", "supervisord", "--health-timeout", "20")

    # seed 003's phase name and today's alias both name the prometheus phase; it needs nothing of the exporters
    done = cli(*apply, "--dry-run", "--phase", "prometheus")
    assert done.returncode == 0, done.stdout + done.stderr
    done = cli(*apply, "--dry-run", "--phase", "core")
    assert done.returncode == 0, done.stdout + done.stderr

    # run 1: Alertmanager crashes; Prometheus (needs it) is held back; the exporter before and blackbox after run
    done = cli(*apply)
    assert done.returncode == 1, done.stdout + done.stderr
    am, prom = steps["alertmanager"]["id"], steps["prometheus"]["id"]
    assert f"held back: {prom} (requires {am}: rolled_back" in done.stdout, done.stdout
    assert f"failed: {am}" in done.stdout
    assert "went ahead: " in done.stdout and steps["blackbox_exporter"]["id"] in done.stdout
    assert _serves(ports["node_exporter"], "1.9.0") and _serves(ports["blackbox_exporter"], "0.25.0"), done.stdout
    assert not _serves(ports["prometheus"], "3.5.0")

    # `--component prometheus` is held back while Alertmanager is not done, naming it
    done = cli(*apply, "--component", "prometheus", "--json")
    assert done.returncode == 1 and _statuses(done.stdout) == {"prometheus": "skipped"}, done.stdout + done.stderr
    assert "requires_not_done" in done.stdout and am in done.stdout

    # re-run after the cause is fixed: only the failed component is retried, then what it held back
    fail_while.unlink()
    done = cli(*apply, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _statuses(done.stdout) == {
        "node_exporter": "up_to_date",
        "alertmanager": "ok",
        "prometheus": "ok",
        "blackbox_exporter": "up_to_date",
    }
    assert _serves(ports["prometheus"], "3.5.0")
    done = cli(*apply, "--component", "prometheus", "--json")
    assert done.returncode == 0 and _statuses(done.stdout)["prometheus"] == "up_to_date"
    assert '"step_started"' not in done.stdout  # converged: nothing runs again
