"""How long `obsplan plan` takes offline compared with `python -c "import obsplan"`, measured in one run.

Usage: python bench/bench_plan.py [REPEATS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def plan_offline(tmp: str) -> list[str]:
    """`obsplan plan --offline` on the shipped example's staging environment, writing into `tmp`."""
    cmd = ["plan", "--config-dir", "examples", "--env", "staging", "--offline", "-o", f"{tmp}/bench.lock"]
    return [sys.executable, "-m", "obsplan", *cmd]


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OBSPLAN_CACHE_DIR": tmp, "OBSPLAN_NOW": "2026-11-22"}
        base = timed([sys.executable, "-c", "import obsplan"], env, repeats)
        plan = timed(plan_offline(tmp), env, repeats)
    print(f"import obsplan:          {base * 1000:8.1f} ms (median of {repeats})")
    print(f"obsplan plan --offline:  {plan * 1000:8.1f} ms (median of {repeats})")
    print(f"ratio plan/import:       {plan / base:8.1f}x")


if __name__ == "__main__":
    main()
