"""CLI start-up against its floors, as ratios measured in one run (issue: shape of the CLI).

Targets: `obsplan --version` and `--help` <= 2x `python -c pass`; `obsplan plan --offline` on the example
<= 1.3x importing the libraries it cannot avoid (pydantic, yaml, jinja2, networkx); `obsplan status` on an
empty root <= 3x `python -c pass`. Every command runs as `python -m obsplan` (a console-script shim, such as
pyenv's, would add its own start-up).

Every case reads compiled bytecode, as an installed package does: the runs share a bytecode cache in a temporary
directory (PYTHONPYCACHEPREFIX; PYTHONDONTWRITEBYTECODE unset) filled by one untimed warm-up run per case.
Otherwise, in a shell with PYTHONDONTWRITEBYTECODE=1 and a source checkout, obsplan's own ~150 modules would be
compiled from source on every run while the libraries it is compared with load their installed bytecode.

Usage: python bench/bench_cli.py [REPEATS]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench_plan import plan_offline, timed  # the same median-of-N timer (run as a script: bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
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
            timed(cmd, env, 1)  # warm-up: fills the bytecode cache (and obsplan's release cache)
        t = {name: timed(cmd, env, repeats) for name, cmd in cases.items()}
    base, libs = t["python -c pass"], t["import pydantic, yaml, jinja2, networkx"]
    for name, seconds in t.items():
        print(f"{name:42s} {seconds * 1000:8.1f} ms")
    print(f"--version / python -c pass:   {t['obsplan --version'] / base:5.2f}x (target <= 2)")
    print(f"--help / python -c pass:      {t['obsplan --help'] / base:5.2f}x (target <= 2)")
    print(f"status / python -c pass:      {t['obsplan status (empty root)'] / base:5.2f}x (target <= 3)")
    print(f"plan --offline / its libs:    {t['obsplan plan --offline'] / libs:5.2f}x (target <= 1.3)")


if __name__ == "__main__":
    main()
