"""Spike (issue 22, Scale): the CPU one host costs the controller for each candidate transport, over real SSH to
network-namespace hosts (tests/fleet/harness.py), before a transport is chosen for the rollout.

Per host, the same work: connect, then three commands (`true`, 20 kB through `cat` on stdin, `echo done`),
all hosts in parallel (one thread each):

* paramiko: one connection per host, a channel per command, in this process (getrusage RUSAGE_SELF);
* openssh: one `ssh -M -N` master per host (a direct child, so its CPU is counted), readiness signalled by its
  LocalCommand, then one `ssh -o ControlMaster=no` client per command (getrusage RUSAGE_CHILDREN).

Usage: sudo python bench/spike_ssh_transport.py [HOSTS] [paramiko,openssh]   (default: 40 paramiko,openssh)
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fleet.harness import Fleet, FleetHost, start_fleet  # noqa: E402

COMMANDS: list[tuple[str, bytes]] = [("true", b""), ("cat > /dev/null", b"x" * 20000), ("echo done", b"")]
STEP_TIMEOUT = 30


def cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def paramiko_host(fleet: Fleet, host: FleetHost, _index: int) -> None:
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host.address, 22, "root", key_filename=str(fleet.client_key), allow_agent=False, look_for_keys=False)
    transport = client.get_transport()
    assert transport is not None
    for command, data in COMMANDS:
        chan = transport.open_session(timeout=STEP_TIMEOUT)
        chan.exec_command(command)
        chan.sendall(data)
        chan.shutdown_write()
        chan.makefile("rb").read()
        chan.recv_exit_status()
        chan.close()
    client.close()


def ssh_args(fleet: Fleet, control: str) -> list[str]:
    return [
        *("ssh", "-F", os.devnull, "-T", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"),
        *("-o", f"UserKnownHostsFile={fleet.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"),
        *("-o", "UpdateHostKeys=no", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"),
        *("-i", str(fleet.client_key), "-o", f"ControlPath={control}", "-l", "root", "-p", "22"),
    ]


def openssh_host(fleet: Fleet, host: FleetHost, index: int) -> None:
    base = ssh_args(fleet, f"{fleet.base}/cm{index}")
    master = subprocess.Popen(
        [*base, "-M", "-N", "-o", "PermitLocalCommand=yes", "-o", "LocalCommand=echo ready", "--", host.address],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"SHELL": "/bin/sh", "PATH": os.environ["PATH"]},
    )
    try:
        assert master.stdout is not None and master.stdout.readline() == b"ready\n"
        for command, data in COMMANDS:
            argv = [*base, "-o", "ControlMaster=no", "--", host.address, command]
            subprocess.run(argv, input=data, capture_output=True, check=True, timeout=STEP_TIMEOUT)
    finally:
        master.terminate()
        master.communicate()


def measure(fleet: Fleet, one: Callable[[Fleet, FleetHost, int], None]) -> tuple[float, float]:
    start, self0, children0 = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    threads = [threading.Thread(target=one, args=(fleet, h, i)) for i, h in enumerate(fleet.hosts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    used = cpu(resource.RUSAGE_SELF) - self0 + cpu(resource.RUSAGE_CHILDREN) - children0
    return time.perf_counter() - start, used


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    kinds = (sys.argv[2] if len(sys.argv) > 2 else "paramiko,openssh").split(",")
    ways = {"paramiko": paramiko_host, "openssh": openssh_host}
    fleet = start_fleet(count, quiet_rc=True)
    try:
        for kind in kinds:
            wall, used = measure(fleet, ways[kind])
            print(f"{kind:9} {count} hosts: wall {wall:.2f} s, CPU {used:.2f} s = {used * 1000 / count:.1f} ms/host")
    finally:
        fleet.close()


if __name__ == "__main__":
    main()
