"""`obsplan rollout --dry-run` for 100 and 1,000 synthetic inventory hosts (no SSH): time growth as a ratio.

Runs the dry-run in process (the CLI's start-up is the same for both sizes and would hide the growth) with
the JSON event output written to memory, over plans/production.lock. Linear growth is a ratio near 10.

Usage: python bench/bench_rollout.py [REPEATS]
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from obsplan.rollout.orchestrator import RolloutOptions, rollout
from obsplan.rollout.report import RolloutReporter

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "plans" / "production.lock"
ROLES = [
    ["node_exporter", "promtail"],
    ["node_exporter", "promtail", "nginx_exporter"],
    ["node_exporter", "promtail", "mysqld_exporter"],
]


def inventory(path: Path, n: int) -> Path:
    hosts = {
        f"host{i:05d}": {
            "address": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}",
            "components": ROLES[i % len(ROLES)],
        }
        for i in range(n - 1)
    }
    hosts["mon1"] = {"address": "10.255.0.5"}  # every component, the inventory's Prometheus
    path.write_text(json.dumps({"prometheus": "http://10.255.0.5:9090", "hosts": hosts}))
    return path


def timed(inv: Path, state: Path, repeats: int) -> tuple[float, int]:
    samples, lines = [], 0
    for _ in range(repeats):
        out = io.StringIO()
        opts = RolloutOptions(lock=LOCK, inventory=inv, state_dir=state, gates=["min_over_time(up[1m])"], dry_run=True)
        start = time.perf_counter()
        code = rollout(opts, RolloutReporter(as_json=True, stream=out))
        samples.append(time.perf_counter() - start)
        assert code == 0
        lines = out.getvalue().count("\n")
    return statistics.median(samples), lines


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (100, 1000):
            results[n] = timed(inventory(Path(tmp) / f"inv{n}.json", n), Path(tmp) / "state", repeats)
            print(f"{n:>5} hosts: {results[n][0] * 1000:8.1f} ms ({results[n][1]} events)")
        ratio = results[1000][0] / results[100][0]
        print(f"growth 100 → 1,000 hosts: x{ratio:.1f} (linear: x10)")
        assert not (Path(tmp) / "state").exists(), "a dry-run must not create the journal"


if __name__ == "__main__":
    main()
