"""The rollout's own overhead at fleet scale (issue 22, Scale): 10, 50 and 100 hosts in one batch, over real
SSH to network-namespace hosts (tests/fleet/harness.py), with the host side stubbed: each host's `obsplan` is a
shell script that answers `facts` (the host runs nginx_exporter), and `apply` by sleeping STUB seconds and
printing the JSON events a real `obsplan apply --json` prints. Measured: the rollout's wall time and the CPU
time of the rollout process and its SSH worker (wait4 rusage), per host. Goal: 100 hosts within STUB + 5 s and
at most 20 ms of rollout CPU per host. The default path is measured: components decided from each host's
facts (a facts pass over every host first), then one batch. The hosts' root reads an empty ~/.bashrc
(start_fleet(quiet_rc=True)): bash started by sshd for each command reads it, and a development machine's
(`pyenv init`: ~100 processes, 0.15 s CPU per command) made every SSH command wait on the hosts' side.

Usage: sudo python bench/bench_rollout_scale.py [STUB_SECONDS] [SIZES]   (default: 5 10,50,100)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fleet.conftest import OBSPLAN  # noqa: E402
from tests.fleet.harness import start_fleet  # noqa: E402

LOCK = ROOT / "plans" / "production.lock"
EVENT = '{"timestamp": "2026-12-04T12:00:00+00:00", "component": "nginx_exporter", "event": "%s", "metadata": %s}'
STAGES = ["download", "verify", "extract", "install", "activate", "health"]


def stub_script(stub: float) -> str:
    facts = {
        "format": 1,
        "obsplan_version": "0.1.0",
        "platform": "linux-amd64",
        "root": "/",
        "collected_at": "2026-12-04T12:00:00+00:00",
        "components": {"nginx_exporter": {"installed": "1.4.0", "linked": "1.4.0", "served": "1.4.0"}},
    }
    step = {"step": "nginx_exporter@1.5.3", "from_version": "1.4.0", "to_version": "1.5.3"}
    events = [EVENT % ("run_started", "{}"), EVENT % ("step_started", json.dumps(step))]
    events += [EVENT % ("stage_done", json.dumps({**step, "stage": s})) for s in STAGES]
    events += [EVENT % ("step_done", json.dumps({**step, "duration": stub})), EVENT % ("run_done", "{}")]
    lines = "\n".join(f"  printf '%s\\n' '{e}'" for e in events)
    return f"""#!/bin/sh
case "$1" in
  --version) echo "obsplan, version 0.1.0" ;;
  facts) printf '%s\\n' '{json.dumps(facts)}' ;;
  apply)
  sleep {stub}
{lines}
  ;;
  *) echo "stub: $1" >&2; exit 2 ;;
esac
"""


def inventory(path: Path, fleet, stub_path: Path) -> Path:  # type: ignore[no-untyped-def]
    hosts = {h.name: {"address": h.address} for h in fleet.hosts}
    defaults = {
        "ssh_user": "root",
        "ssh_key": str(fleet.client_key),
        "known_hosts": str(fleet.known_hosts),
        "root": str(fleet.root),
        "service_manager": "supervisord",
        "obsplan": str(stub_path),
    }
    path.write_text(json.dumps({"defaults": defaults, "hosts": hosts}))
    return path


def timed_rollout(inv: Path, state: Path, names: list[str]) -> tuple[float, float, dict]:
    args = [OBSPLAN, "rollout", str(LOCK), "--inventory", str(inv), "--canary", "0", "--batches", "100%"]
    args += ["--limit", ",".join(names), "--state-dir", str(state), "--json"]
    start = time.perf_counter()
    with open(state.parent / f"{state.name}.out", "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = (state.parent / f"{state.name}.out").read_text()
    results = [json.loads(x) for x in text.splitlines() if x.startswith('{"')]
    ok = sum(1 for e in results if e.get("event") == "host_result" and e.get("status") == "ok")
    assert os.waitstatus_to_exitcode(status) == 0 and ok == len(names), text[-3000:]
    return wall, usage.ru_utime + usage.ru_stime, {"ok": ok}


def main() -> None:
    stub = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    sizes = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "10,50,100").split(",")]
    tmp = Path(tempfile.mkdtemp())
    fleet = start_fleet(max(sizes), quiet_rc=True)
    try:
        stub_path = fleet.base / "obsplan-stub"
        stub_path.write_text(stub_script(stub))
        stub_path.chmod(0o755)
        inv = inventory(tmp / "inventory.json", fleet, stub_path)
        print(f"stub apply: {stub:.1f} s; goal: 100 hosts <= {stub + 5:.1f} s wall, <= 20 ms rollout CPU per host")
        print(f"{'hosts':>5}  {'wall s':>7}  {'over stub s':>11}  {'CPU s':>6}  {'CPU ms/host':>11}")
        for n in sizes:
            wall, cpu, _ = timed_rollout(inv, tmp / f"state{n}", [h.name for h in fleet.hosts[:n]])
            print(f"{n:>5}  {wall:7.2f}  {wall - stub:11.2f}  {cpu:6.2f}  {cpu * 1000 / n:11.1f}")
    finally:
        fleet.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
