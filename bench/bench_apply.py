"""Benchmark the executor with real binaries (Debian node_exporter 1.5.0 → 1.9.0) under a real supervisord.

Prints, from one run:
  * wall time of a no-op apply (node_exporter already at the lock's target), in-process and via the CLI;
  * tool overhead per upgrade step excluding the health wait (step wall time minus the `verify` stage,
    from the journal), with a per-stage breakdown;
  * ratios between them.

Usage: python bench/bench_apply.py [--repeat N]     (needs apt-get/dpkg-deb or a filled ~/.cache/obsplan-tests/debs)
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import obsplan.executor.apply.engine as engine  # noqa: E402
from obsplan.executor.reporters import RecordingReporter  # noqa: E402

from tests.executor import fetch_debs  # noqa: E402
from tests.executor.conftest import Hop, build_lock, free_port, node_runtime, shutdown_supervisord  # noqa: E402
from tests.static_server import start_static_server  # noqa: E402


def _stage_times(db: Path, step_id: str) -> dict[str, float]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT stage, status, at FROM journal WHERE step_id = ? ORDER BY id", (step_id,)
        ).fetchall()
    conn.close()
    begins: dict[str, datetime] = {}
    out: dict[str, float] = {}
    start = end = None
    for stage, status, at in rows:
        t = datetime.fromisoformat(at)
        if stage == "step" and status == "start":
            start, out = t, {}
        elif stage == "step" and status == "done":
            end = t
        elif status == "begin":
            begins[stage] = t
        elif status == "end" and stage in begins:
            out[stage] = (t - begins[stage]).total_seconds()
    assert start is not None and end is not None
    out["total"] = (end - start).total_seconds()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    releases = fetch_debs.build_releases()
    www = Path(tempfile.mkdtemp(prefix="obw"))
    root = Path(tempfile.mkdtemp(prefix="obb", dir="/tmp"))
    for p in releases.values():
        shutil.copyfile(p, www / p.name)
    static = start_static_server(www)
    url = static.url
    try:
        port = free_port()
        t15, t19 = releases[("node_exporter", "1.5.0")], releases[("node_exporter", "1.9.0")]
        h1 = Hop(None, "1.5.0", f"{url}/{t15.name}", fetch_debs.sha256_file(t15))
        h2 = Hop("1.5.0", "1.9.0", f"{url}/{t19.name}", fetch_debs.sha256_file(t19))
        lock1 = build_lock(www / "lock1.json", {"node_exporter": (node_runtime(port), "exporters", [h1])})
        lock2 = build_lock(www / "lock2.json", {"node_exporter": (node_runtime(port), "exporters", [h1, h2])})
        opts = engine.ApplyOptions(root=root, mode="standard")

        t0 = time.perf_counter()
        assert engine.apply(lock1, opts, RecordingReporter()).exit_code == 0
        install_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert engine.apply(lock2, opts, RecordingReporter()).exit_code == 0
        upgrade_wall = time.perf_counter() - t0
        stages = _stage_times(root / "var/lib/obsplan/state.db", "node_exporter-1.9.0")
        overhead = stages["total"] - stages.get("verify", 0.0)

        noop = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rep = RecordingReporter()
            assert engine.apply(lock2, opts, rep).exit_code == 0 and rep.find("nothing_to_do")
            noop.append(time.perf_counter() - t0)
        cli = []
        for _ in range(max(1, args.repeat // 2)):
            t0 = time.perf_counter()
            subprocess.run(
                ["obsplan", "apply", str(lock2), "--root", str(root), "--json"], check=True, capture_output=True
            )
            cli.append(time.perf_counter() - t0)

        noop_med, cli_med = statistics.median(noop), statistics.median(cli)
        print(f"noop_apply_inprocess_seconds_median {noop_med:.4f}  (n={len(noop)}, min {min(noop):.4f})")
        print(f"noop_apply_cli_seconds_median       {cli_med:.4f}  (n={len(cli)}, includes interpreter start)")
        print(f"install_apply_wall_seconds          {install_wall:.4f}  (1 step, from nothing)")
        print(f"upgrade_apply_wall_seconds          {upgrade_wall:.4f}  (1 step up to date + 1 upgrade step)")
        print(f"upgrade_step_total_seconds          {stages['total']:.4f}")
        print(f"upgrade_step_health_wait_seconds    {stages.get('verify', 0.0):.4f}  (verify stage)")
        print(f"upgrade_step_overhead_seconds       {overhead:.4f}  (total minus health wait)")
        for stage in ("preflight", "fetch", "extract", "checkpoint", "switch", "restart", "finish"):
            print(f"  stage_{stage:<11} {stages.get(stage, 0.0):.4f}")
        print(f"ratio_noop_to_step_overhead         {noop_med / overhead:.3f}")
        print(f"ratio_overhead_to_step_total        {overhead / stages['total']:.3f}")
    finally:
        shutdown_supervisord(root)
        static.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(www, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
