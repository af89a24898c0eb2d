"""End-to-end crash safety: SIGKILL at every journal boundary converges on re-run; one apply per root."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor.reporters import RecordingReporter

from .conftest import Server, build_lock, free_port, hop, node_runtime
from .test_e2e_node_exporter import _cli, _served

pytestmark = pytest.mark.e2e

BOUNDARIES = [
    "step:start",
    "preflight:end",
    "fetch:begin",
    "fetch:end",
    "extract:end",
    "checkpoint:end",
    "switch:begin",
    "switch:end",
    "restart:end",
    "verify:end",
    "finish:end",
]


def _locks(server: Server, releases: dict, tmp_path: Path, port: int) -> tuple[Path, Path]:
    h1 = hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0")
    h2 = hop(server, releases[("node_exporter", "1.9.0")], "1.5.0", "1.9.0")
    first = build_lock(tmp_path / "first.json", {"node_exporter": (node_runtime(port), "exporters", [h1])})
    both = build_lock(tmp_path / "both.json", {"node_exporter": (node_runtime(port), "exporters", [h1, h2])})
    return first, both


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_sigkill_at_boundary_converges(
    boundary: str, server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    port = free_port()
    first, both = _locks(server, releases, tmp_path, port)
    opts = engine.ApplyOptions(root=root, mode="fast", health_timeout=30.0)
    assert engine.apply(first, opts, RecordingReporter()).exit_code == 0

    killed = _cli("apply", str(both), "--root", str(root), "--mode", "fast", env={"OBSPLAN_TEST_KILL_AT": boundary})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    # `resume` without a lock re-applies the last applied lock; `apply LOCK` again converges the same way
    command = ["resume"] if boundary in ("switch:end", "verify:end") else ["apply", str(both)]
    again = _cli(*command, "--root", str(root), "--mode", "fast", "--json", "--health-timeout", "30")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _served(port) == "1.9.0"
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == "1.9.0"
    with sqlite3.connect(root / "var/lib/obsplan/state.db") as conn:
        installed = conn.execute("SELECT component, version FROM installed_components").fetchall()
        pending = conn.execute("SELECT COUNT(*) FROM rollback_points WHERE status = 'pending'").fetchone()[0]
        ok = conn.execute(
            "SELECT COUNT(*) FROM upgrade_history WHERE to_version = '1.9.0' AND success = 1 AND kind = 'upgrade'"
        ).fetchone()[0]
    conn.close()
    assert installed == [("node_exporter", "1.9.0")]
    assert pending == 0
    assert ok == 1
    assert not list((root / "opt/obsplan/node_exporter").glob(".tmp-*"))
    # and a third run has nothing to do
    third = engine.apply(both, opts, rec := RecordingReporter())
    assert third.exit_code == 0 and rec.find("nothing_to_do")


def test_second_concurrent_apply_refused(server: Server, releases: dict, root: Path, tmp_path: Path) -> None:
    port = free_port()
    first, _ = _locks(server, releases, tmp_path, port)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\nfrom obsplan.executor.apply.hostlock import "
            "apply_lock\nfrom obsplan.executor.host.layout import Layout\nwith apply_lock(Layout(Path(sys.argv[1])), 'apply'):\n"
            "    print('held', flush=True)\n    time.sleep(120)\n",
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        second = _cli("apply", str(first), "--root", str(root))
        assert second.returncode == 1
        assert f"pid {holder.pid}" in second.stderr
        assert "started at" in second.stderr
    finally:
        holder.terminate()
        holder.wait(10)
        assert holder.stdout is not None
        holder.stdout.close()
    # released by the kernel when the holder exits: now exactly this one runs
    third = _cli("apply", str(first), "--root", str(root), "--mode", "fast")
    assert third.returncode == 0, third.stderr


@pytest.mark.parametrize("boundary", ["rollback:begin", "rollback:end"])
def test_sigkill_during_auto_rollback_converges(
    boundary: str, server: Server, releases: dict, root: Path, tmp_path: Path
) -> None:
    from .test_e2e_node_exporter import _crashing_release

    port = free_port()
    h1 = hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0")
    h2 = hop(server, _crashing_release(tmp_path, "1.9.1"), "1.5.0", "1.9.1")
    lock = build_lock(tmp_path / "lock.json", {"node_exporter": (node_runtime(port), "exporters", [h1, h2])})
    killed = _cli("apply", str(lock), "--root", str(root), "--mode", "fast", env={"OBSPLAN_TEST_KILL_AT": boundary})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    again = _cli("apply", str(lock), "--root", str(root), "--mode", "fast", "--json")
    assert again.returncode == 1, again.stdout + again.stderr  # the bad release fails again and is rolled back
    assert _served(port) == "1.5.0"
    assert os.readlink(root / "opt/obsplan/node_exporter/current") == "1.5.0"
    with sqlite3.connect(root / "var/lib/obsplan/state.db") as conn:
        pending = conn.execute("SELECT COUNT(*) FROM rollback_points WHERE status = 'pending'").fetchone()[0]
        interrupted = conn.execute("SELECT COUNT(*) FROM upgrade_history WHERE kind = 'interrupted'").fetchone()[0]
    conn.close()
    assert pending == 0 and interrupted == 1
