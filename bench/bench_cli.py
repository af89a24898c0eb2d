"""CLI start-up against its floors, as ratios measured in one run (issue: shape of the CLI).

Targets (issue 23): `obsplan --version` and `--help` <= 2.5x `python -c pass`; `obsplan plan --offline` on the
example <= 2.2x importing the libraries it cannot avoid (pydantic, yaml, jinja2, networkx); `obsplan status` on an
empty root <= 3x `python -c pass`. Every command runs as `python -m obsplan` (a console-script shim, such as
pyenv's, would add its own start-up).

The cases are interleaved: each round runs every case once, and a case's time is its median over the rounds, so
a machine that speeds up or slows down during the run (a shared VM) moves every case alike, not only the cases
measured in that stretch. 15 rounds by default: with 7 or 9, two runs a minute apart on the 2-core development
machine differed by up to 0.3 in the plan ratio; with 15, five runs in a row stayed within 1.98-2.09.

Every case reads compiled bytecode, as an installed package does: the runs share a bytecode cache in a temporary
directory (PYTHONPYCACHEPREFIX; PYTHONDONTWRITEBYTECODE unset) filled by one untimed warm-up run per case.
Otherwise, in a shell with PYTHONDONTWRITEBYTECODE=1 and a source checkout, obsplan's own ~150 modules would be
compiled from source on every run while the libraries it is compared with load their installed bytecode.

Usage: python bench/bench_cli.py [REPEATS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_plan import plan_offline  # the same example plan (run as a script: bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OBSPLAN_CACHE_DIR": tmp, "OBSPLAN_NOW": "2026-11-22"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = f"{tmp}/pycache"
        cases = {
            "python -c pass": [PY, "-c", "pass"],
            "import pydantic, yaml, jinja2, networkx": [PY, "-c", "import pydantic, yaml, jinja2, networkx"],
            "obsplan --version": [PY, "-m", "obsplan", "--version"],
            "obsplan --help": [PY, "-m", "obsplan", "--help"],
            "obsplan status (empty root)": [PY, "-m", "obsplan", "status", "--root", f"{tmp}/root"],
            "obsplan plan --offline": plan_offline(tmp),
        }
        for cmd in cases.values():
            _run(cmd, env)  # warm-up: fills the bytecode cache (and obsplan's release cache)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(repeats):
            for name, cmd in cases.items():
                samples[name].append(_run(cmd, env))
        t = {name: statistics.median(runs) for name, runs in samples.items()}
    base, libs = t["python -c pass"], t["import pydantic, yaml, jinja2, networkx"]
    for name, seconds in t.items():
        print(f"{name:42s} {seconds * 1000:8.1f} ms")
    print(f"--version / python -c pass:   {t['obsplan --version'] / base:5.2f}x (target <= 2.5)")
    print(f"--help / python -c pass:      {t['obsplan --help'] / base:5.2f}x (target <= 2.5)")
    print(f"status / python -c pass:      {t['obsplan status (empty root)'] / base:5.2f}x (target <= 3)")
    print(f"plan --offline / its libs:    {t['obsplan plan --offline'] / libs:5.2f}x (target <= 2.2)")


def _run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
