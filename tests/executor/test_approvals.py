"""`apply --auto` runs only approved steps (approved in the lock by the compiler, or on this host with
`obsplan approve`); the rest, and every step requiring them, stay pending approval, which is not a failure."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import httpx
import obsplan.executor.apply.approvals as approvals
import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor import queries
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import served_build_info
from obsplan.executor.reporters import RecordingReporter

from obsplan.kernel.errors import EXIT_USAGE, ObsplanError
from obsplan.lock.lockfile import Artifact, Lock, Reason, Step
from obsplan.safeio.fsio import write_atomic
from tests.lockbuild import component_lock, write_sealed_lock

from .conftest import PLATFORM, Server, build_lock, free_port, hop, node_runtime
from .test_e2e_node_exporter import _cli

NE15, NE19, AM, PROM = "node_exporter@1.5.0", "node_exporter@1.9.0", "alertmanager@0.27.0", "prometheus@2.53.3"


def _needs_supervisord() -> None:
    if shutil.which("supervisord") is None:
        pytest.skip("supervisord not installed (dry runs check the service manager is reachable)")


def _gated_lock(path: Path, sha: str = "ab" * 32) -> Path:
    """node_exporter 1.5.0 (not approved) → 1.9.0 (approved); alertmanager requires node_exporter 1.9.0;
    prometheus is independent and approved. Ports nothing listens on: a dry run never starts anything."""

    def art(name: str, version: str, digest: str = "cd" * 32) -> dict[str, Artifact]:
        f = f"{name}-{version}.{PLATFORM}.tar.gz"
        return {PLATFORM: Artifact(url=f"http://127.0.0.1:9/{f}", filename=f, format="tar.gz", sha256=digest)}

    def step(sid: str, frm: str | None, requires: list[str], approval: str | None, digest: str = "cd" * 32) -> Step:
        name, to = sid.split("@")
        return Step(
            id=sid,
            component=name,
            from_version=frm,
            to_version=to,
            phase="all",
            requires=requires,
            risk="low" if approval else "medium",
            reasons=[Reason(code="test", detail="test")],
            artifacts=art(name, to, digest),
            approval=approval,
        )

    steps = [
        step(NE15, None, [], None, sha),
        step(NE19, "1.5.0", [NE15], "risk low: auto_upgrade"),
        step(AM, None, [NE19], "risk low: auto_upgrade"),
        step(PROM, None, [], "listed in the policy's approvals"),
    ]
    comps = {}
    for name, version in (("node_exporter", "1.9.0"), ("alertmanager", "0.27.0"), ("prometheus", "2.53.3")):
        rt = node_runtime(free_port()).model_copy(update={"binaries": {name: f"*/{name}"}, "service_binary": name})
        comps[name] = component_lock(None, version, art(name, version), rt, github_repo=None)
    return write_sealed_lock(path, comps, steps, ["all"], platforms=[PLATFORM])


def _dry(lock: Path, root: Path, auto: bool = True) -> tuple[engine.ApplyReport, RecordingReporter]:
    rec = RecordingReporter()
    report = engine.apply(lock, engine.ApplyOptions(root=root, dry_run=True, auto=auto), rec)
    return report, rec


def test_auto_leaves_unapproved_and_dependent_steps_pending(tmp_path: Path) -> None:
    _needs_supervisord()
    lock, root = _gated_lock(tmp_path / "lock.json"), tmp_path / "root"
    report, rec = _dry(lock, root)
    status = {r.step_id: (r.status, r.reason) for r in report.results}
    assert status == {
        NE15: ("pending", "pending_approval"),
        NE19: ("pending", "requires_pending_approval"),  # the chain and `requires` carry the wait
        AM: ("pending", "requires_pending_approval"),  # transitively, across components
        PROM: ("would_run", "dry_run"),
    }
    assert report.exit_code == 0  # pending is not a failure
    assert {e.metadata["step"]: e.metadata["waiting_for"] for e in rec.find("pending_approval")} == {
        NE15: [],
        NE19: [NE15],
        AM: [NE19],
    }
    (summary,) = rec.find("approvals_pending")
    assert summary.metadata["steps"] == [NE15, NE19, AM] and "obsplan approve" in summary.metadata["hint"]
    assert rec.find("run_finished")[0].metadata["counts"] == {"pending": 3, "would_run": 1}
    assert [e.metadata["step"] for e in rec.find("step_started")] == [PROM]
    # without --auto the operator applying by hand is the approval: everything runs
    report, _ = _dry(lock, root, auto=False)
    assert {r.status for r in report.results} == {"would_run"}
    assert not root.exists()  # dry runs leave no trace


def test_approve_on_host_unblocks_and_is_bound_to_the_step(tmp_path: Path) -> None:
    _needs_supervisord()
    lock, root = _gated_lock(tmp_path / "lock.json"), tmp_path / "root"
    with pytest.raises(ObsplanError) as exc:
        approvals.approve(root, "node_exporter@9.9.9", lock)
    assert exc.value.exit_code == EXIT_USAGE and f"{NE15}, {NE19}, {AM}, {PROM}" in str(exc.value)
    proc = _cli("approve", "nope", "--root", str(root), "--lock", str(lock))
    assert proc.returncode == 2 and "known step ids" in proc.stderr and NE15 in proc.stderr
    proc = _cli("approve", NE15, "--root", str(root))  # no applied lock under this root yet
    assert proc.returncode == 2 and "--lock" in proc.stderr

    rows = queries.status(root, lock)
    pending = {r["component"]: [p["step"] for p in r["pending_approval"]] for r in rows}
    assert pending == {"alertmanager": [], "node_exporter": [NE15], "prometheus": []}
    text = _cli("status", "--root", str(root), "--lock", str(lock))
    assert "pending approval (1;" in text.stdout and NE15 in text.stdout

    proc = _cli("approve", NE15, "--root", str(root), "--lock", str(lock), "--by", "alice", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["approved_by"] == "alice" and not info["already_approved"] and info["lock_approval"] is None
    again = json.loads(_cli("approve", NE15, "--root", str(root), "--lock", str(lock), "--json").stdout)
    assert again["already_approved"] and again["approved_by"] == "alice"
    with sqlite3.connect(root / "var/lib/obsplan/state.db") as conn:
        assert conn.execute("SELECT step_id, approved_by FROM approvals").fetchall() == [(NE15, "alice")]
    conn.close()
    audit = [json.loads(line) for line in (root / "var/log/obsplan/audit.jsonl").read_text().splitlines()]
    assert [(e["event"], e["metadata"]["step"], e["metadata"]["already_approved"]) for e in audit] == [
        ("approved", NE15, False),
        ("approved", NE15, True),
    ]

    report, rec = _dry(lock, root)
    assert {r.status for r in report.results} == {"would_run"} and not rec.find("pending_approval")
    assert all(not r["pending_approval"] for r in queries.status(root, lock))

    # re-planned: same step id, other artifact → the host approval does not carry over
    replanned = _gated_lock(tmp_path / "replanned.json", sha="ef" * 32)
    report, _ = _dry(replanned, root)
    assert {r.step_id: r.status for r in report.results}[NE15] == "pending"


def test_steps_done_on_the_host_are_not_pending(tmp_path: Path) -> None:
    _needs_supervisord()
    lock, root = _gated_lock(tmp_path / "lock.json"), tmp_path / "root"
    layout = Layout(root)
    layout.version_dir("node_exporter", "1.9.0").mkdir(parents=True)
    os.symlink("1.9.0", layout.current_link("node_exporter"))  # past the unapproved 1.5.0 step already
    report, rec = _dry(lock, root)
    status = {r.step_id: (r.status, r.reason) for r in report.results}
    assert status[NE15] == ("up_to_date", "already_past")
    assert status[NE19][0] == "would_run" and status[AM][0] == "would_run"
    assert not rec.find("approvals_pending") and report.exit_code == 0
    assert all(not r["pending_approval"] for r in queries.status(root, lock))


@pytest.mark.e2e
def test_pending_step_applied_after_approve(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    path = build_lock(
        tmp_path / "lock.json",
        {
            "node_exporter": (
                node_runtime(port),
                "exporters",
                [
                    hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0"),
                    hop(server, releases[("node_exporter", "1.9.0")], "1.5.0", "1.9.0"),
                ],
            )
        },
    )
    data = json.loads(path.read_text())
    data["plan"]["steps"][0]["approval"] = "risk low is in auto_upgrade.allowed_risk_levels"
    write_atomic(path, Lock.model_validate(data).sealed().to_json())
    args = ("--root", str(root), "--mode", "fast", "--health-timeout", "30")

    proc = _cli("apply", str(path), "--auto", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 step(s) pending approval" in proc.stdout and "node_exporter-1.9.0" in proc.stdout
    with httpx.Client(trust_env=False) as client:
        assert served_build_info(client, port, "node_exporter_build_info") == "1.5.0"
    st = _cli("status", "--root", str(root))
    assert "pending approval (1;" in st.stdout and "node_exporter-1.9.0" in st.stdout

    ok = _cli("approve", "node_exporter-1.9.0", "--root", str(root))  # the step is found in the applied lock
    assert ok.returncode == 0 and ok.stdout.startswith("approved node_exporter-1.9.0"), ok.stdout + ok.stderr
    proc = _cli("apply", str(path), "--auto", *args, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert not [e for e in events if e["event"] == "pending_approval"]
    with httpx.Client(trust_env=False) as client:
        assert served_build_info(client, port, "node_exporter_build_info") == "1.9.0"
    assert "pending approval" not in _cli("status", "--root", str(root)).stdout
