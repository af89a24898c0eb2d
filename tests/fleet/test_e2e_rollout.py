"""End-to-end fleet rollouts: four network-namespace hosts over real SSH, real node_exporter 1.5.0 → 1.9.0,
gates read from a real Prometheus."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from obsplan.lock.lockfile import load_lock
from obsplan.safeio.fsio import write_atomic

from .conftest import OBSPLAN, Prometheus, Release, _bundle, events, install_base, release_args, rollout, served
from .harness import Fleet

pytestmark = pytest.mark.e2e

Watch = Callable[[list[str], Path], subprocess.Popen[str]]
GATE = 'min_over_time(up{instance=~"($HOSTS):9100"}[2s])'
FAST = ["--mode", "fast", "--soak", "2", "--interval", "1", "--initial-delay", "3"]


def _one_host_result(evs: list[dict]) -> dict:
    """The single `host_result` event of a rollout halted at its one-host canary."""
    (result,) = [e for e in evs if e["event"] == "host_result"]
    return result


def test_canary_and_two_batches_pass(
    fleet: Fleet, node_releases: dict[str, Release], prometheus: Prometheus, tmp_path: Path
) -> None:
    install_base(fleet, node_releases["1.5.0"], tmp_path)
    prometheus.wait_up(4)
    rel = node_releases["1.9.0"]
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN)
    proc = rollout(
        *release_args(rel.lock, inv, rel.bundle),
        "--gate",
        GATE,
        "--prometheus",
        prometheus.url,
        *FAST,
        "--json",
        state=tmp_path / "state",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    evs = events(proc)
    assert [e["event"] for e in evs if e["event"].startswith(("batch_", "gate_p", "gate_f", "rollout_"))] == [
        "rollout_planned",
        "batch_started",
        "gate_passed",
        "batch_started",
        "gate_passed",
        "batch_started",
        "gate_passed",
        "rollout_done",
    ]
    assert [b["hosts"] for b in evs[0]["batches"]] == [["host1"], ["host2"], ["host3", "host4"]]
    assert all(served(h.address) == "1.9.0" for h in fleet.hosts)
    status = rollout("--status", state=tmp_path / "state")
    assert status.returncode == 0 and "| batch 2 | host4 | apply | ok |" in status.stdout, status.stdout
    print(status.stdout)
    journal = json.loads(rollout("--status", "--json", state=tmp_path / "state").stdout)
    for r in journal["host_results"]:  # `obsplan facts` collected before the apply, recorded in the journal
        assert r["detail"]["facts"]["components"]["node_exporter"]["served"] == "1.5.0", r
    assert journal["options"]["host_components"] == {h.name: ["node_exporter"] for h in fleet.hosts}  # from facts

    facts = tmp_path / "facts"  # "what runs where?": the fleet's facts over the same SSH path, as one table
    collected = subprocess.run(
        [OBSPLAN, "facts", "--inventory", str(inv), "-o", str(facts)], capture_output=True, text=True, check=False
    )
    assert collected.returncode == 0, collected.stderr
    again = subprocess.run(  # the next collection writes into the same folder
        [OBSPLAN, "facts", "--inventory", str(inv), "-o", str(facts)], capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in facts.iterdir()) == [f"{h.name}.json" for h in fleet.hosts]
    table = subprocess.run(
        [OBSPLAN, "status", "--facts", str(facts), "--lock", str(rel.lock)], capture_output=True, text=True, check=True
    ).stdout
    assert [line.split() for line in table.splitlines()[1:]] == [
        [h.name, "node_exporter", "1.9.0", "1.9.0", "1.9.0", "in", "sync"] for h in fleet.hosts
    ], table


def _history_rows(fleet: Fleet, host: str) -> int:
    db = fleet.host(host).root / "var/lib/obsplan/state.db"
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("SELECT count(*) FROM upgrade_history").fetchone()
    conn.close()
    return int(n)


def test_canary_failing_health_halts_with_others_untouched(
    fleet: Fleet, node_releases: dict[str, Release], tmp_path: Path
) -> None:
    install_base(fleet, node_releases["1.5.0"], tmp_path)
    before = {h.name: (_history_rows(fleet, h.name), fleet.exporter_pid(h)) for h in fleet.hosts}
    rel = node_releases["1.9.1-crashing"]
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN)
    proc = rollout(
        *release_args(rel.lock, inv, rel.bundle),
        "--mode",
        "fast",
        "--health-timeout",
        "5",
        "--json",
        state=tmp_path / "state",
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    evs = events(proc)
    result = _one_host_result(evs)
    assert (result["host"], result["status"], result["steps"]) == (
        "host1",
        "failed",
        {"node_exporter-1.5.0": "up_to_date", "node_exporter-1.9.1": "rolled_back"},
    )
    halted = evs[-1]
    assert halted["event"] == "rollout_halted" and halted["batch"] == "canary"
    assert halted["untouched"] == ["host2", "host3", "host4"]
    assert served(fleet.host("host1").address) == "1.5.0"  # the host rolled itself back
    for h in fleet.hosts[1:]:
        assert (_history_rows(fleet, h.name), fleet.exporter_pid(h)) == before[h.name]
        assert served(h.address) == "1.5.0"
        assert not (h.root / "var/lib/obsplan/rollout" / halted["rollout_id"]).exists()  # nothing even uploaded

    # a halt by a failed host is a decision too: --resume alone moves nowhere, --retry-failed applies it again
    refused = rollout(*release_args(rel.lock, inv, rel.bundle), "--resume", "--json", state=tmp_path / "state")
    assert refused.returncode == 2 and "--retry-failed" in refused.stderr, refused.stdout + refused.stderr
    assert not events(refused)
    retried = rollout(
        *release_args(rel.lock, inv, rel.bundle), "--resume", "--retry-failed", "--json", state=tmp_path / "state"
    )
    assert retried.returncode == 1, retried.stdout[-3000:] + retried.stderr
    assert [(e["host"], e["status"]) for e in events(retried) if e["event"] == "host_result"] == [("host1", "failed")]
    for h in fleet.hosts[1:]:
        assert (_history_rows(fleet, h.name), fleet.exporter_pid(h)) == before[h.name]


def test_unknown_host_key_is_refused(fleet: Fleet, node_releases: dict[str, Release], tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(
            line
            for line in fleet.known_hosts.read_text().splitlines(keepends=True)
            if not line.startswith(fleet.host("host1").address + " ")
        )
    )
    rel = node_releases["1.5.0"]
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN, known_hosts=known, components=["node_exporter"])
    proc = rollout(*release_args(rel.lock, inv, rel.bundle), "--json", state=tmp_path / "state")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = _one_host_result(events(proc))
    assert result["host"] == "host1" and result["status"] == "unreachable"
    assert "No host key" in result["reason"] and "known_hosts" in result["reason"], result["reason"]
    assert known.read_text().count("\n") == 3  # never auto-accepted (written back)
    assert all(not any(h.root.iterdir()) for h in fleet.hosts)  # nothing on any host


@pytest.fixture
def watch() -> Iterator[Callable[[list[str], Path], subprocess.Popen[str]]]:
    """Start `obsplan rollout ... --json` in the background (killed at the end if still running)."""
    procs: list[subprocess.Popen[str]] = []

    def start(args: list[str], state: Path) -> subprocess.Popen[str]:
        procs.append(
            subprocess.Popen(
                [OBSPLAN, "rollout", *args, "--json", "--state-dir", str(state)],
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
        return procs[-1]

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()


def _until(proc: subprocess.Popen[str], seen: list[dict], pred: Callable[[dict], bool]) -> dict:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            seen.append(json.loads(line))
            if pred(seen[-1]):
                return seen[-1]
    raise AssertionError(f"rollout ended (exit {proc.wait()}) before the awaited event: {seen[-3:]}")


def _finish(proc: subprocess.Popen[str], seen: list[dict]) -> int:
    out, err = proc.communicate(timeout=300)
    seen += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert "Traceback" not in err, err
    return proc.returncode


def test_gate_failure_after_batch_two_halts_then_rolls_back(
    fleet: Fleet, node_releases: dict[str, Release], prometheus: Prometheus, tmp_path: Path, watch: Watch
) -> None:
    install_base(fleet, node_releases["1.5.0"], tmp_path)
    prometheus.wait_up(4)
    rel = node_releases["1.9.0"]
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN)
    args = [
        str(rel.lock),
        "--inventory",
        str(inv),
        "--bundle",
        str(rel.bundle),
        "--gate",
        GATE,
        "--prometheus",
        prometheus.url,
        *FAST,
    ]
    host4 = fleet.host("host4")

    # 1. halt (default): host4's exporter stopped (SIGSTOP) once batch 2 is applied, before the gate measures
    proc, seen = watch(args, tmp_path / "state"), []
    _until(proc, seen, lambda e: e["event"] == "host_result" and e["host"] == "host4")
    pid = fleet.exporter_pid(host4)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        assert _finish(proc, seen) == 1
    finally:
        os.kill(pid, signal.SIGCONT)
    assert [e["event"] for e in seen if e["event"].startswith("gate_")][-2:] == ["gate_measurement", "gate_failed"]
    halted = seen[-1]
    assert (halted["event"], halted["batch"]) == ("rollout_halted", "batch 2")
    assert not any(e["event"] == "host_result" and e["action"] == "rollback" for e in seen)
    assert [served(h.address) for h in fleet.hosts] == ["1.9.0"] * 4  # halt leaves the hosts as they are

    # 2. resume as journalled while host4 is still down: the failed gate is measured again first, fails again,
    #    nothing is applied; changing the failure action without --override-gates is refused (exit 2)
    os.kill(pid, signal.SIGSTOP)
    try:
        again = rollout(*args, "--resume", "--json", state=tmp_path / "state")
        assert again.returncode == 1, again.stdout[-3000:] + again.stderr
        evs = events(again)
        assert [e["event"] for e in evs if e["event"].startswith(("gate_p", "gate_f", "batch_", "host_"))] == [
            "gate_failed"
        ]
        assert evs[-1]["event"] == "rollout_halted" and "still failing" in evs[-1]["reason"]
        refused = rollout(*args, "--resume", "--on-gate-failure", "rollback", state=tmp_path / "state")
        assert refused.returncode == 2 and "--override-gates" in refused.stderr, refused.stdout + refused.stderr

        # 3. with --override-gates (journalled): the gate still fails, batch 2 is rolled back
        override = [*args, "--resume", "--on-gate-failure", "rollback", "--override-gates"]
        proc, seen = watch(override, tmp_path / "state"), []
        _until(proc, seen, lambda e: e["event"] == "gate_failed")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert _finish(proc, seen) == 1
    assert not [e for e in seen if e["event"] == "host_result" and e["action"] == "apply"]
    rolled = {e["host"]: e["status"] for e in seen if e["event"] == "host_result" and e["action"] == "rollback"}
    assert rolled == {"host3": "rolled_back", "host4": "rolled_back"}, seen
    assert [served(h.address) for h in fleet.hosts] == ["1.9.0", "1.9.0", "1.5.0", "1.5.0"]
    status = rollout("--status", state=tmp_path / "state").stdout
    assert "overridden on resume" in status and "--on-gate-failure" in status, status

    # 4. host4 healthy again: the gate passes when measured first, batch 2 is applied again and gated: done
    prometheus.wait_up(4)
    done = rollout(*args, "--resume", "--json", state=tmp_path / "state")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    applied = {e["host"] for e in events(done) if e["event"] == "host_result" and e["action"] == "apply"}
    assert applied == {"host3", "host4"}
    assert [served(h.address) for h in fleet.hosts] == ["1.9.0"] * 4


def test_resume_never_runs_past_a_failed_gate(
    fleet: Fleet, node_releases: dict[str, Release], prometheus: Prometheus, tmp_path: Path
) -> None:
    """The issue's own sequence: a gate that can never pass halts after the canary; the resume line of docs/fleet.md
    (without --gate) measures that gate again and halts again; a different gate is refused unless
    --override-gates, which is journalled and shown in --status."""
    rel = node_releases["1.5.0"]
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN, components=["node_exporter"])
    state = tmp_path / "state"
    shape = ["--canary", "1", "--batches", "50%,100%", "--prometheus", prometheus.url, "--mode", "fast"]
    transcript: list[str] = []

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        proc = rollout(*release_args(rel.lock, inv, rel.bundle), *extra, state=state)
        transcript.append(
            f"$ obsplan rollout LOCK --inventory I --bundle B {' '.join(extra)}   # exit {proc.returncode}"
        )
        transcript.append((proc.stdout.split("\n## Rollout")[0] + proc.stderr).rstrip())
        return proc

    halted = run("--gate", "vector(0)", *shape)
    assert halted.returncode == 1 and "HALTED at canary: gate failed" in halted.stdout, halted.stdout
    resumed = run("--resume")
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "gate measurement 1/1: FAILED vector(0)" in resumed.stdout and "still failing" in resumed.stdout
    assert "host2:" not in resumed.stdout
    refused = run("--resume", "--gate", "vector(1)")
    assert refused.returncode == 2 and "--override-gates" in refused.stderr
    assert [served(h.address) for h in fleet.hosts] == ["1.5.0", None, None, None]  # only the canary was touched
    overridden = run("--resume", "--gate", "vector(1)", "--override-gates")
    assert overridden.returncode == 0, overridden.stdout + overridden.stderr
    assert overridden.stdout.count("gate passed after canary") == 1  # measured first, then not again
    assert [served(h.address) for h in fleet.hosts] == ["1.5.0"] * 4
    status = rollout("--status", state=state).stdout
    assert "overridden on resume" in status and "vector(1)" in status, status
    print("\n".join(transcript) + "\n$ obsplan rollout --status\n" + status)


def test_killed_mid_batch_then_resume(
    fleet: Fleet, node_releases: dict[str, Release], tmp_path: Path, watch: Watch
) -> None:
    install_base(fleet, node_releases["1.5.0"], tmp_path)
    rel = node_releases["1.9.0"]
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN)
    args = [*release_args(rel.lock, inv, rel.bundle), "--mode", "fast", "--canary", "0", "--batches", "50%,100%"]
    proc, seen = watch(args, tmp_path / "state"), []
    _until(proc, seen, lambda e: e["event"] == "batch_started" and e["batch"] == "batch 2")
    deadline = time.monotonic() + 60
    while not any(fleet.processes(fleet.host(n), "obsplan apply") for n in ("host3", "host4")):
        assert time.monotonic() < deadline, "batch 2 never started applying"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    fleet.wait_gone("obsplan apply")  # the cut-off remote applies end (or were ended with their SSH session)
    finished = {n: (_history_rows(fleet, n), fleet.exporter_pid(fleet.host(n))) for n in ("host1", "host2")}

    resumed = rollout(*args, "--resume", "--json", state=tmp_path / "state")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr
    evs = events(resumed)
    assert evs[0]["event"] == "rollout_resumed" and evs[0]["done"] == ["host1", "host2"]
    assert {e["host"] for e in evs if e["event"] == "host_result"} == {"host3", "host4"}
    assert {n: (_history_rows(fleet, n), fleet.exporter_pid(fleet.host(n))) for n in finished} == finished
    assert [served(h.address) for h in fleet.hosts] == ["1.9.0"] * 4
    status = json.loads(rollout("--status", "--json", state=tmp_path / "state").stdout)
    assert status["status"] == "done"
    assert sorted(r["host"] for r in status["host_results"] if r["status"] == "ok") == [
        "host1",
        "host2",
        "host3",
        "host4",
    ]


def test_soak_holds_the_canary_as_waiting(fleet: Fleet, node_releases: dict[str, Release], tmp_path: Path) -> None:
    install_base(fleet, node_releases["1.5.0"], tmp_path)
    lock = load_lock(node_releases["1.9.0"].lock)
    steps = [s.model_copy(update={"soak_seconds": 3600}) if s.to_version == "1.9.0" else s for s in lock.plan.steps]
    held = lock.model_copy(update={"plan": lock.plan.model_copy(update={"steps": steps})}).sealed()
    path = tmp_path / "held.lock"
    write_atomic(path, held.to_json())
    rel = Release(path, _bundle(path))
    inv = fleet.inventory(tmp_path / "inventory.yaml", OBSPLAN)
    proc = rollout(*release_args(rel.lock, inv, rel.bundle), "--mode", "fast", "--json", state=tmp_path / "state")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    evs = events(proc)
    result = _one_host_result(evs)
    assert (result["host"], result["status"]) == ("host1", "waiting")
    assert 3000 < result["waiting_seconds"] < 3600 and "has served since" in result["reason"]
    assert evs[-1]["event"] == "rollout_halted" and "waiting for the policy's soak: host1" in evs[-1]["reason"]
    assert [served(h.address) for h in fleet.hosts] == ["1.5.0"] * 4
