"""The sequences operators live (issue 19), through the CLI under a real supervisord:

* a Prometheus build without promtool (Debian trixie's 2.53.3) after one with it (bookworm's 2.42.0): the
  promtool link goes at the switch, the second apply is a no-op, rollback brings the link back; `status`
  shows components the lock has no step for and components only obsplan manages;
* seed 003's two-stage Prometheus run (2.48.1 → 2.55.1 → 3.8.1, floor 2.55.1) rolled back with
  `--last-run` to the version before its last step;
* seed 003's "prometheus already at 3.8.1 (manually upgraded), skipping": a hand change on the lock's path is
  accepted by apply, one off it stays drift (status and doctor agree) until `obsplan adopt`;
* seed 003's Phase 1 without `runtime.mysql`: mysqld_exporter's credentials come from the running
  installation (its unit's DATA_SOURCE_NAME, then obsplan's own --config.my-cnf, or ~/.my.cnf); with none
  anywhere only that component's step is refused.

Prometheus 2.48.1/2.55.1/3.8.1 are stand-ins (a small Python program serving health and build_info) since
Debian ships only 2.42.0 and 2.53.3."""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import httpx
import pytest
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.services.supervisord import SupervisordManager

from obsplan.lock.lockfile import load_lock
from obsplan.safeio.fsio import write_atomic

from . import fetch_debs
from .conftest import Server, build_lock, catalog_runtime, free_port, hop, node_runtime, prometheus_runtime
from .test_e2e_fake_services import FAKE
from .test_e2e_node_exporter import _cli

pytestmark = pytest.mark.e2e


def _served(port: int) -> str | None:
    with httpx.Client(trust_env=False) as client:
        return served_build_info(client, port, "prometheus_build_info")


def _run(*args: str, root: Path, code: int = 0) -> str:
    """An obsplan command under `root` (supervisord, fast); asserts its exit code; returns its stdout."""
    extra = ["--root", str(root), "--service-manager", "supervisord"]
    if args[0] in ("apply", "rollback"):
        extra += ["--mode", "fast", "--health-timeout", "30"]
    done = _cli(*args, *extra)
    assert done.returncode == code, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _status(root: Path, *lock: str) -> dict[str, dict]:
    return {r["component"]: r for r in json.loads(_run("status", *lock, "--json", root=root))}


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _without_promtool(tmp_path: Path) -> Path:
    """Debian trixie's 2.53.3 as its prometheus package ships it: promtool is a package of its own (the
    release fixture packs it in), published under a name of its own. The binary is the one the release
    fixture packed, taken from the unpacked package (not decompressed again from the release tarball)."""
    binary = fetch_debs.extracted_file("trixie", "prometheus", "usr/bin/prometheus")
    built = fetch_debs.make_tarball(tmp_path / "trixie", "prometheus", "2.53.3", {"prometheus": binary}, level=1)
    return built.rename(built.with_name("prometheus-2.53.3-no-promtool.linux-amd64.tar.gz"))


def test_promtool_gone_in_new_build_converges_and_status_sees_every_component(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    port = free_port()
    runtime = prometheus_runtime(port)
    h1 = hop(server, releases[("prometheus", "2.42.0")], None, "2.42.0")
    assert releases[("prometheus", "2.53.3")].is_file()  # built by the fixture, from trixie's package
    h2 = hop(server, _without_promtool(tmp_path), "2.42.0", "2.53.3")
    first = build_lock(tmp_path / "first.lock", {"prometheus": (runtime, "core", [h1])})
    both = build_lock(tmp_path / "both.lock", {"prometheus": (runtime, "core", [h1, h2])})
    promtool = root / "usr/local/bin/promtool"

    _run("apply", str(first), root=root)
    assert promtool.is_symlink() and promtool.exists()
    out = _run("apply", str(both), "--json", root=root)
    assert [e["metadata"]["unlinked"] for e in _events(out) if e["event"] == "switched"] == [["promtool"]]
    assert not os.path.lexists(promtool)  # 2.53.3 ships no promtool: no dangling link left
    entry = _status(root)["prometheus"]
    assert (entry["health"], entry["served_version"], entry["problems"]) == ("serving", "2.53.3", [])

    again = _events(_run("apply", str(both), "--json", root=root))  # converged: nothing restarts
    assert not [e for e in again if e["event"] in ("step_done", "switched")]
    assert [e["event"] for e in again if e["event"] == "nothing_to_do"] == ["nothing_to_do"]

    _run("rollback", "prometheus", "--to", "2.42.0", root=root)
    assert promtool.exists() and os.readlink(promtool).startswith("../../../opt/obsplan/prometheus/current/")
    assert _served(port) == "2.42.0"

    # a lock with no step for prometheus (already where it is) and a lock without prometheus at all
    no_step = load_lock(first).model_copy(update={"plan": load_lock(first).plan.model_copy(update={"steps": []})})
    write_atomic(tmp_path / "no-step.lock", no_step.sealed().to_json())
    entry = _status(root, "--lock", str(tmp_path / "no-step.lock"))["prometheus"]
    assert (entry["installed_version"], entry["host_version"], entry["served_version"]) == ("2.42.0",) * 3
    assert (entry["health"], entry["up_to_date"], entry["drift"]) == ("serving", True, None)
    node = hop(server, releases[("node_exporter", "1.9.0")], None, "1.9.0")
    other = build_lock(tmp_path / "other.lock", {"node_exporter": (node_runtime(free_port()), "exporters", [node])})
    rows = _status(root, "--lock", str(other))
    assert (rows["prometheus"]["served_version"], rows["prometheus"]["target_version"]) == ("2.42.0", None)
    assert (rows["node_exporter"]["host_version"], rows["node_exporter"]["health"]) == (None, "down")
    table = _run("status", "--lock", str(other), root=root)
    row = next(line for line in table.splitlines() if line.startswith("prometheus")).split()
    assert row[:6] == ["prometheus", "2.42.0", "2.42.0", "-", "2.42.0", "serving"]  # installed, linked, -, served


def _fake(tmp_path: Path, version: str) -> Path:
    """A stand-in Prometheus `version` as a promu release tarball."""
    script = FAKE.format(python=sys.executable, name="prometheus", version=version, health="/-/ready").encode()
    return fetch_debs.make_tarball(tmp_path / "fake" / version, "prometheus", version, {"prometheus": script})


def _two_stage(server: Server, tmp_path: Path, port: int) -> tuple[Path, Path]:
    """(lock installing 2.48.1, seed 003's two-stage lock 2.48.1 → 2.55.1 → 3.8.1 with floor 2.55.1)."""
    runtime = prometheus_runtime(port)
    h0 = hop(server, _fake(tmp_path, "2.48.1"), None, "2.48.1")
    h1 = hop(server, _fake(tmp_path, "2.55.1"), "2.48.1", "2.55.1")
    h2 = hop(server, _fake(tmp_path, "3.8.1"), "2.55.1", "3.8.1", floor="2.55.1")
    first = build_lock(tmp_path / "first.lock", {"prometheus": (runtime, "prometheus", [h0])})
    return first, build_lock(tmp_path / "two-stage.lock", {"prometheus": (runtime, "prometheus", [h1, h2])})


def test_rollback_last_run_after_two_stage_prometheus(server: Server, root: Path, tmp_path: Path) -> None:
    port = free_port()
    first, two_stage = _two_stage(server, tmp_path, port)
    _run("apply", str(first), root=root)
    _run("apply", str(two_stage), root=root)
    assert _served(port) == "3.8.1"

    out = _run("rollback", "--last-run", "--json", root=root)  # 2.48.1 is below the floor: 2.55.1
    [summary] = [e for e in _events(out) if e["event"] == "last_run_rollback"]
    assert [(r["component"], r["status"], r["detail"]["to"]) for r in summary["metadata"]["results"]] == [
        ("prometheus", "ok", "2.55.1")
    ]
    assert _served(port) == "2.55.1" and _status(root)["prometheus"]["installed_version"] == "2.55.1"
    again = _run("rollback", "--last-run", root=root)
    assert "already_back" in again


def _hand_place(root: Path, tmp_path: Path, version: str) -> None:
    """By hand: a `version` binary copied over obsplan's link, the service restarted."""
    exposed = root / "usr/local/bin/prometheus"
    exposed.unlink()
    script = FAKE.format(python=sys.executable, name="prometheus", version=version, health="/-/ready")
    exposed.write_text(script)
    exposed.chmod(0o755)
    SupervisordManager(Layout(root)).restart("prometheus")


def test_hand_change_on_the_path_is_accepted_off_it_adopted(server: Server, root: Path, tmp_path: Path) -> None:
    port = free_port()
    first, two_stage = _two_stage(server, tmp_path, port)
    _run("apply", str(first), root=root)
    _hand_place(root, tmp_path, "3.8.1")  # seed 003: "User manually upgrades prometheus to 3.8.1"
    assert _status(root)["prometheus"]["health"] == "drift"
    assert "drift" in _run("doctor", root=root, code=1)

    out = _run("apply", str(two_stage), root=root)
    assert "prometheus already at 3.8.1 (manually upgraded), skipping" in out
    entry = _status(root)["prometheus"]
    assert (entry["installed_version"], entry["host_version"], entry["served_version"]) == ("3.8.1",) * 3
    assert (entry["drift"], entry["health"], entry["floor"]) == (None, "serving", "2.55.1")
    assert (root / "opt/obsplan/prometheus/3.8.1").is_dir()
    assert _run("doctor", root=root).strip().endswith("healthy")
    assert "nothing_to_do" in _run("apply", str(two_stage), root=root)
    points = json.loads(_run("rollback", "prometheus", "--list", "--json", root=root))
    assert ("manual", "2.48.1") in {(p["label"], p["from_version"]) for p in points["points"]}  # kept (below floor)

    _hand_place(root, tmp_path, "3.9.0")  # not on the lock's path: drift until accepted
    out = _run("apply", str(two_stage), root=root)
    assert "manual_change" in out and _status(root)["prometheus"]["health"] == "drift"
    assert "obsplan adopt prometheus" in _run("doctor", root=root, code=1)
    assert "prometheus 3.9.0 adopted (was 3.8.1" in _run("adopt", "prometheus", root=root)
    entry = _status(root)["prometheus"]
    assert (entry["installed_version"], entry["served_version"], entry["drift"]) == ("3.9.0", "3.9.0", None)
    assert _run("doctor", root=root).strip().endswith("healthy")
    _run("adopt", "prometheus", root=root, code=1)  # nothing left to adopt

    _run("rollback", "prometheus", root=root)  # the adoption kept 3.8.1 as its rollback point
    assert _served(port) == "3.8.1"
    assert "nothing_to_do" in _run("apply", str(two_stage), root=root)


def _needs_host_credentials(path: Path) -> Path:
    """The lock as `obsplan plan` writes it when versions.yaml has no runtime.mysql (seed 003's Phase 1)."""
    lock = load_lock(path)
    steps = [
        s.model_copy(update={"settings_from_host": ["mysql"]}) if s.component == "mysqld_exporter" else s
        for s in lock.plan.steps
    ]
    write_atomic(
        path, lock.model_copy(update={"plan": lock.plan.model_copy(update={"steps": steps})}).sealed().to_json()
    )
    return path


def test_exporter_credentials_come_from_the_running_installation(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    from .test_e2e_daytwo import _hand_started

    port = free_port()
    runtime = catalog_runtime("mysqld_exporter", port)  # no runtime.mysql: versions.yaml gave none
    assert runtime.mysql is None
    old = root / "usr/local/bin/mysqld_exporter"
    with tarfile.open(releases[("mysqld_exporter", "0.14.0")]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/mysqld_exporter"))
        data = tar.extractfile(member)
        assert data is not None
        old.parent.mkdir(parents=True)
        old.write_bytes(data.read())
    old.chmod(0o755)
    dsn = "exporter:s3cret@tcp(127.0.0.1:3306)/"
    unit = root / "etc/systemd/system/mysqld_exporter.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(f'[Service]\nEnvironment="DATA_SOURCE_NAME={dsn}"\nExecStart={old} --web.listen-address=:{port}\n')
    h = hop(server, releases[("mysqld_exporter", "0.17.2")], "0.14.0", "0.17.2")
    lock = _needs_host_credentials(build_lock(tmp_path / "m.lock", {"mysqld_exporter": (runtime, "exporters", [h])}))
    os.environ["DATA_SOURCE_NAME"] = dsn
    try:
        with _hand_started(old, port):
            out = _run("apply", str(lock), "--json", root=root)
    finally:
        del os.environ["DATA_SOURCE_NAME"]
    [taken] = [e for e in _events(out) if e["event"] == "settings_from_host"]
    assert "DATA_SOURCE_NAME of" in taken["metadata"]["settings"]["mysql"]
    my_cnf = (root / "etc/mysqld_exporter/my.cnf").read_text()
    assert "user=exporter" in my_cnf and "password=s3cret" in my_cnf and "port=3306" in my_cnf
    secret = root / "etc/obsplan/credentials/mysqld_exporter-mysql.password"
    assert secret.read_text() == "s3cret" and secret.stat().st_mode & 0o777 == 0o600
    entry = _status(root)["mysqld_exporter"]
    assert (entry["served_version"], entry["health"]) == ("0.17.2", "serving")
    again = _events(_run("apply", str(lock), "--json", root=root))  # now from obsplan's own --config.my-cnf
    assert [e["event"] for e in again if e["event"] in ("nothing_to_do", "step_done")] == ["nothing_to_do"]


def test_no_credentials_anywhere_refuses_only_that_component(
    server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    ports = {"mysqld_exporter": free_port(), "node_exporter": free_port()}
    comps = {
        "mysqld_exporter": (
            catalog_runtime("mysqld_exporter", ports["mysqld_exporter"]),
            "exporters",
            [hop(server, releases[("mysqld_exporter", "0.17.2")], None, "0.17.2")],
        ),
        "node_exporter": (
            node_runtime(ports["node_exporter"]),
            "exporters",
            [hop(server, releases[("node_exporter", "1.9.0")], None, "1.9.0")],
        ),
    }
    lock = _needs_host_credentials(build_lock(tmp_path / "two.lock", comps))
    out = _run("apply", str(lock), "--json", root=root, code=1)
    failed = [e["metadata"] for e in _events(out) if e["event"] == "step_failed"]
    assert [f["reason"] for f in failed] == ["settings_missing"] and "runtime.mysql" in failed[0]["error"]
    assert not (root / "opt/obsplan/mysqld_exporter").exists()  # nothing of it touched
    rows = _status(root)
    assert rows["node_exporter"]["served_version"] == "1.9.0"  # the other component went ahead

    (root / "root").mkdir()
    (root / "root/.my.cnf").write_text("[client]\nuser=exporter\npassword=from-home\nhost=127.0.0.1\n")
    out = _run("apply", str(lock), "--json", root=root)
    [taken] = [e for e in _events(out) if e["event"] == "settings_from_host"]
    assert "/root/.my.cnf (the exporter's default)" in taken["metadata"]["settings"]["mysql"]
    assert _status(root)["mysqld_exporter"]["served_version"] == "0.17.2"
