"""Issue 19 item 7: `plan --check` answers one question, "does this lock say what these inputs decide?".

The shipped example passes as shipped (its offline locks have no sha256: the report and apply say so, --check
does not fail on it unless --require-checksums), through the shipped pre-commit hook's own command; a lock
written by an earlier obsplan that decides the same passes; a lock deciding something else fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from obsplan.lock.lockfile import Lock
from obsplan.safeio.fsio import write_atomic

ROOT = Path(__file__).resolve().parents[2]


def obsplan(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["OBSPLAN_CACHE_DIR"] = str(cwd / ".cache")  # no cache: only what the inputs give
    return subprocess.run(["obsplan", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _hook_entry() -> list[str]:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    return str(hooks["obsplan-check"]["entry"]).split()


def _as_obsplan_0_1_wrote_it(lock: Path) -> None:
    """The same decisions in the shape obsplan 0.1 wrote: its version, the phase names it had (core, logs), the
    phase order written into `requires`, no phase aliases, no advisory record."""
    data = json.loads(lock.read_text())
    data["obsplan_version"] = "0.1.0"
    old_names = {v: k for k, v in data["plan"].pop("phase_aliases").items()}
    data.pop("advisory_scan", None)
    data["plan"]["phases"] = [old_names.get(p, p) for p in data["plan"]["phases"]]
    earlier: list[str] = []
    for phase in data["plan"]["phases"]:
        steps = [s for s in data["plan"]["steps"] if old_names.get(s["phase"], s["phase"]) == phase]
        for s in steps:
            s["phase"] = phase
            s["requires"] = sorted(set(s["requires"]) | set(earlier))
        earlier = [s["id"] for s in steps] or earlier
    write_atomic(lock, Lock.model_validate(data).sealed().to_json())


def test_the_shipped_example_passes_the_shipped_hook_and_older_locks_deciding_the_same_pass(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copytree(ROOT / "plans", work / "plans")
    hook = [*_hook_entry()[1:], "--config-dir", "examples", "--env", "production", "-o", "plans/production.lock"]
    # as shipped: the pre-commit example of docs/review-ci.md, on the shipped example and lock
    done = obsplan(work, *hook)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plans/production.lock: up to date" in done.stdout
    assert "18 artifact(s) have no sha256" in done.stderr
    # those who want missing checksums to fail CI ask for it
    strict = obsplan(work, *hook, "--require-checksums")
    assert strict.returncode == 1 and strict.stdout.count("sha256 is missing") == 18
    # a lock `plan` just wrote passes too
    assert (
        obsplan(work, "plan", "--config-dir", "examples", "--env", "staging", "-o", "plans/staging.lock").returncode
        == 0
    )
    staging = ["plan", "--config-dir", "examples", "--env", "staging", "-o", "plans/staging.lock", "--check"]
    assert obsplan(work, *staging).returncode == 0
    # written by an earlier obsplan, deciding the same: passes
    _as_obsplan_0_1_wrote_it(work / "plans" / "staging.lock")
    done = obsplan(work, *staging)
    assert done.returncode == 0, done.stdout + done.stderr
    # deciding something else: fails, naming it
    data = json.loads((work / "plans" / "staging.lock").read_text())
    data["plan"]["steps"][0]["approval"] = "approved by hand"
    write_atomic(work / "plans" / "staging.lock", Lock.model_validate(data).sealed().to_json())
    done = obsplan(work, *staging)
    assert done.returncode == 1 and "plan.steps differ" in done.stdout and "approved by hand" in done.stdout


def test_a_lock_missing_a_requirement_the_matrix_decides_fails(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copytree(ROOT / "plans", work / "plans")
    data = json.loads((work / "plans" / "staging.lock").read_text())
    final = next(s for s in data["plan"]["steps"] if s["id"].startswith("prometheus@3."))
    final["requires"] = [r for r in final["requires"] if not r.startswith("alertmanager@")]
    write_atomic(work / "plans" / "staging.lock", Lock.model_validate(data).sealed().to_json())
    done = obsplan(work, "plan", "--config-dir", "examples", "--env", "staging", "-o", "plans/staging.lock", "--check")
    assert done.returncode == 1 and f"{final['id']} does not require alertmanager@" in done.stdout
