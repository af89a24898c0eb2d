"""Soak between stages: the policy's `soak:` reaches the lock's steps, and apply holds the next hop until the
from-version has served long enough (real node_exporter binaries under a real supervisord)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import obsplan.executor.apply.engine as engine
import pytest
from obsplan.compiler.plan.soak_rules import matches, parse_duration, soak_seconds
from obsplan.executor.reporters import RecordingReporter

from obsplan.lock.lockfile import load_lock
from obsplan.rollout.outcome import judge
from obsplan.safeio.fsio import write_atomic
from tests.executor.conftest import Server, build_lock, free_port, hop, node_runtime, releases, root, server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def test_durations_and_version_keys() -> None:
    assert [parse_duration(x) for x in (90, "45m", "36h", "7d", "2w", "1.5h")] == [
        90,
        2700,
        129600,
        604800,
        1209600,
        5400,
    ]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("a week")
    assert matches("2.55", "2.55.1") and matches("2.55", "2.55") and not matches("2.5", "2.55.1")
    policy = {"prometheus": {"2": "1d", "2.55": "7d"}}
    assert soak_seconds(policy, "prometheus", "2.55.1") == 604800  # the longest matching key
    assert soak_seconds(policy, "prometheus", None) is None and soak_seconds(policy, "grafana", "2.55.1") is None


def _plan(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OBSPLAN_NOW": "2026-11-22T00:00:00+00:00", "OBSPLAN_CACHE_DIR": str(out.parent / "c")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "obsplan",
            "plan",
            "--config-dir",
            str(config),
            "--env",
            "production",
            "--offline",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_policy_soak_reaches_the_lock(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "examples", config)
    policy = config / "upgrade-policy.yaml"
    policy.write_text(policy.read_text() + 'soak:\n  prometheus: {"2.55": 7d}\n')
    proc = _plan(config, tmp_path / "prod.lock")
    assert proc.returncode == 0, proc.stderr
    steps = {s.id: s for s in load_lock(tmp_path / "prod.lock").plan.steps}
    assert steps["prometheus@3.13.2"].soak_seconds == 604800
    assert steps["prometheus@2.55.1"].soak_seconds is None  # from 2.x below 2.55: no soak asked
    raw = json.loads((tmp_path / "prod.lock").read_text())
    assert ["soak_seconds" in s for s in raw["plan"]["steps"]].count(True) == 1  # omitted where absent
    policy.write_text(policy.read_text().replace("7d", "a week"))
    bad = _plan(config, tmp_path / "bad.lock")
    assert bad.returncode == 2 and "soak" in bad.stderr and not (tmp_path / "bad.lock").exists()


@pytest.mark.e2e
def test_apply_holds_the_next_hop_until_soaked(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:  # noqa: F811
    port = free_port()
    h15 = hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0")
    h19 = hop(server, releases[("node_exporter", "1.9.0")], "1.5.0", "1.9.0")
    lock_path = build_lock(tmp_path / "lock.json", {"node_exporter": (node_runtime(port), "exporters", [h15, h19])})
    lock = load_lock(lock_path)
    steps = [s.model_copy(update={"soak_seconds": 3600}) if s.to_version == "1.9.0" else s for s in lock.plan.steps]
    held = lock.model_copy(update={"plan": lock.plan.model_copy(update={"steps": steps})}).sealed()
    write_atomic(tmp_path / "held.json", held.to_json())
    opts = engine.ApplyOptions(root=root, mode="fast", health_timeout=30.0)

    # a fresh host: 1.5.0 installs, 1.9.0 is held for the whole soak (it has served 1.5.0 for no time)
    report = engine.apply(tmp_path / "held.json", opts, rec := RecordingReporter())
    assert report.exit_code == 1
    assert [(r.status, r.reason) for r in report.results] == [("ok", "upgraded"), ("failed", "soaking")]
    (ev,) = rec.find("step_failed", "node_exporter")
    assert 3590 < ev.metadata["remaining_seconds"] <= 3600 and "is not serving yet" in ev.metadata["error"]

    # the next apply measures from the verified 1.5.0 in the history: less than an hour remains (history times
    # have one-second resolution: let one pass, or the remaining time can still read as the whole hour)
    time.sleep(1.1)
    report = engine.apply(tmp_path / "held.json", opts, rec := RecordingReporter())
    assert [r.status for r in report.results] == ["up_to_date", "failed"]
    (ev,) = rec.find("step_failed", "node_exporter")
    assert ev.metadata["remaining_seconds"] < 3600 and "has served since" in ev.metadata["error"]

    # a soak already served lets the hop run; and a host past the step is never held
    time.sleep(2.5)
    steps = [s.model_copy(update={"soak_seconds": 2}) if s.to_version == "1.9.0" else s for s in lock.plan.steps]
    short = lock.model_copy(update={"plan": lock.plan.model_copy(update={"steps": steps})}).sealed()
    write_atomic(tmp_path / "short.json", short.to_json())
    report = engine.apply(tmp_path / "short.json", opts, RecordingReporter())
    assert [r.status for r in report.results] == ["up_to_date", "ok"], report.to_dict()
    report = engine.apply(tmp_path / "held.json", opts, RecordingReporter())
    assert report.exit_code == 0 and [r.status for r in report.results] == ["up_to_date", "up_to_date"]


def test_a_host_held_by_soak_is_waiting_not_failed() -> None:
    held = [
        {"component": "node_exporter", "event": "up_to_date", "metadata": {"step": "ne-1.5.0"}},
        {
            "component": "node_exporter",
            "event": "step_failed",
            "metadata": {"step": "ne-1.9.0", "reason": "soaking", "error": "wait 1h", "remaining_seconds": 3599.5},
        },
    ]
    got = judge("failed", "apply exited 1", held)
    assert (got["status"], got["reason"], got["waiting_seconds"]) == ("waiting", "wait 1h", 3599.5)
    broken = [*held, {"component": "grafana", "event": "step_failed", "metadata": {"step": "g-12", "reason": "x"}}]
    assert judge("failed", "apply exited 1", broken)["status"] == "failed"
    done = [
        {"component": "node_exporter", "event": "step_done", "metadata": {"step": "ne-1.9.0", "from_version": "1.5.0"}}
    ]
    assert judge("ok", "", done)["changed"] == {"node_exporter": "1.5.0"}
