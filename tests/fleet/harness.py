"""Test hosts as Linux network namespaces, each with its own OpenSSH server and its own filesystem view.

One `Fleet` is: a bridge in the root namespace holding `<subnet>.1/24`, and per host a network namespace joined
to the bridge by a veth pair, with address `<subnet>.<10+i>`, loopback up, and a Debian `sshd` (own host key,
key-only auth, own config, port 22 inside the namespace) started through `ip netns exec`. `ip netns exec` gives
the process a private mount namespace, so the host's directory is bound there at one path (`Fleet.root`), the
same for every host: each host sees its own files at that path, and everything its sshd starts (obsplan,
supervisord, the exporters) inherits that view. The subnet is picked at random among 10.2xx.y.0/24 and checked
free against every address and route on this machine. `Fleet.close()` kills every process in every namespace
(frozen first, so supervisord restarts nothing), deletes the namespaces, the veths and the bridge.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import gone

SSHD = "/usr/sbin/sshd"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def pick_free_subnet() -> str:
    """A 10.2xx.y prefix that no address or route on this machine touches."""
    used = sh("ip", "-4", "addr").stdout + sh("ip", "-4", "route", "show", "table", "all").stdout
    for _ in range(200):
        prefix = f"10.{random.randint(200, 250)}.{random.randint(1, 254)}"
        if f" {prefix}." not in used and f"inet {prefix}." not in used and "10.0.0.0/8" not in used:
            return prefix
    raise RuntimeError("no free 10.2xx.y.0/24 subnet found")


@dataclass
class FleetHost:
    name: str
    netns: str
    address: str
    home: Path  # the host's own files (bound at Fleet.root inside its namespace)
    host_key: Path
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        """The host's root directory as seen from the root namespace."""
        return self.home / "root"


@dataclass
class Fleet:
    base: Path
    subnet: str
    bridge: str
    client_key: Path
    known_hosts: Path
    hosts: list[FleetHost] = field(default_factory=list)
    _veths: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """The path every host sees its own root directory at (inside its namespace)."""
        return self.base / "r"

    def host(self, name: str) -> FleetHost:
        return next(h for h in self.hosts if h.name == name)

    def inventory(
        self,
        path: Path,
        obsplan: str,
        known_hosts: Path | None = None,
        components: list[str] | None = None,
        extra: dict | None = None,
    ) -> Path:
        """Write an obsplan YAML inventory of every host."""
        import yaml

        defaults = {
            "ssh_user": "root",
            "ssh_key": str(self.client_key),
            "known_hosts": str(known_hosts or self.known_hosts),
            "root": str(self.root),
            "service_manager": "supervisord",
            "obsplan": obsplan,
        }
        hosts = {h.name: {"address": h.address, "labels": {"role": "web"}} for h in self.hosts}
        if components is not None:
            for entry in hosts.values():
                entry["components"] = components
        path.write_text(yaml.safe_dump({"defaults": defaults, "hosts": hosts, **(extra or {})}, sort_keys=False))
        return path

    def netns_pids(self, host: FleetHost) -> list[int]:
        out = sh("ip", "netns", "pids", host.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def processes(self, host: FleetHost, name: str) -> list[int]:
        """Pids of the processes in the host's namespace whose command line mentions `name`."""
        out = []
        for pid in self.netns_pids(host):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if name in cmdline:
                out.append(pid)
        return out

    def exporter_pid(self, host: FleetHost) -> int | None:
        for pid in self.netns_pids(host):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "node_exporter":
                    return pid
            except OSError:
                continue
        return None

    def wait_gone(self, name: str, timeout: float = 60.0) -> None:
        """Until no process in any host's namespace mentions `name` (e.g. an apply cut off by a killed rollout)."""
        deadline = time.monotonic() + timeout
        while any(self.processes(h, name) for h in self.hosts):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes matching {name!r} still running after {timeout}s")
            time.sleep(0.2)

    def close(self) -> None:
        for host in self.hosts:
            self._kill_all(host)
            if host.sshd is not None:
                host.sshd.wait()  # reaped: it is this process's child
            sh("ip", "netns", "del", host.netns, check=False)
        for veth in self._veths:
            sh("ip", "link", "del", veth, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill_all(self, host: FleetHost) -> None:
        """Every process in the host's namespace (sshd, its sessions, supervisord and its programs) frozen, then
        killed, until none is left: nothing a test checks happens after its teardown, so no graceful stop."""
        deadline = time.monotonic() + 20
        while pids := [p for p in self.netns_pids(host) if not gone(p)]:
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {pids} in {host.netns} survive SIGKILL")
            time.sleep(0.02)


def _sshd_config(host: FleetHost, authorized: Path) -> str:
    return "\n".join(
        [
            "Port 22",
            f"ListenAddress {host.address}",
            f"HostKey {host.host_key}",
            f"PidFile {host.home}/sshd.pid",
            f"AuthorizedKeysFile {authorized}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "Subsystem sftp internal-sftp",
            "MaxStartups 100",
            "MaxSessions 50",
            "LogLevel ERROR",
            "",
        ]
    )


def _keygen(path: Path) -> str:
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path))
    return path.with_suffix(".pub").read_text().strip()


def _quiet_rc(fleet: Fleet) -> str:
    """`mount` commands binding an empty file over root's ~/.bashrc inside the host's mount namespace: bash
    started by sshd for a command reads ~/.bashrc, and this machine's may run `pyenv init` (about 100 processes
    and 0.15 s of CPU per SSH command), which is this machine's, not a fleet host's."""
    import pwd

    rc = Path(pwd.getpwnam("root").pw_dir) / ".bashrc"
    if not rc.is_file():
        return ""
    empty = fleet.base / "empty-bashrc"
    empty.touch()
    return f"mount --bind {empty} {rc} && "


def _add_host(fleet: Fleet, index: int, tag: str, authorized: Path, quiet_rc: bool = False) -> FleetHost:
    name = f"host{index + 1}"
    home = fleet.base / name
    (home / "root").mkdir(parents=True)
    host = FleetHost(
        name=name,
        netns=f"obfl-{tag}-{index}",
        address=f"{fleet.subnet}.{10 + index}",
        home=home,
        host_key=home / "ssh_host_ed25519_key",
    )
    fleet.hosts.append(host)  # from here on, close() cleans it up
    sh("ip", "netns", "add", host.netns)
    outer, inner = f"obf{tag}{index}a", f"obf{tag}{index}b"
    sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
    fleet._veths.append(outer)
    sh("ip", "link", "set", inner, "netns", host.netns)
    sh("ip", "link", "set", outer, "master", fleet.bridge, "up")
    ns = ("ip", "netns", "exec", host.netns)
    sh(*ns, "ip", "link", "set", "lo", "up")
    sh(*ns, "ip", "addr", "add", f"{host.address}/24", "dev", inner)
    sh(*ns, "ip", "link", "set", inner, "up")
    pub = _keygen(host.host_key)
    with fleet.known_hosts.open("a") as fh:
        fh.write(f"{host.address} {' '.join(pub.split()[:2])}\n")
    config = home / "sshd_config"
    config.write_text(_sshd_config(host, authorized))
    quiet = _quiet_rc(fleet) if quiet_rc else ""
    script = f"mount --bind {home / 'root'} {fleet.root} && {quiet}exec {SSHD} -D -e -f {config}"
    with open(home / "sshd.log", "wb") as log:
        host.sshd = subprocess.Popen([*ns, "sh", "-c", script], stdout=subprocess.DEVNULL, stderr=log)
    return host


def _wait_ssh(fleet: Fleet, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    for host in fleet.hosts:
        while True:
            if host.sshd is not None and host.sshd.poll() is not None:
                raise RuntimeError(f"sshd of {host.name} exited: {(host.home / 'sshd.log').read_text()}")
            try:
                with socket.create_connection((host.address, 22), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd of {host.name} not reachable at {host.address}:22") from None
                time.sleep(0.05)


def netns_supported() -> bool:
    """Whether this machine lets us create a network namespace (root with CAP_SYS_ADMIN, iproute2)."""
    if shutil.which("ip") is None:
        return False
    name = f"obfl-probe-{secrets.token_hex(3)}"
    if sh("ip", "netns", "add", name, check=False).returncode != 0:
        return False
    sh("ip", "netns", "del", name, check=False)
    return True


def start_fleet(count: int, quiet_rc: bool = False) -> Fleet:
    """Create `count` hosts; the caller must call close() (also when this raises: it cleans up itself).
    quiet_rc: root's ~/.bashrc reads as empty on the hosts (this machine's shell start-up is neither the
    rollout's overhead in the benchmarks nor what a fleet test checks)."""
    if shutil.which("ip") is None or not Path(SSHD).exists():
        raise FileNotFoundError("needs iproute2 and openssh-server")
    tag = secrets.token_hex(2)
    base = Path(tempfile.mkdtemp(prefix=f"obfl{tag}", dir="/tmp"))
    fleet = Fleet(
        base=base,
        subnet=pick_free_subnet(),
        bridge=f"obfbr{tag}",
        client_key=base / "id_ed25519",
        known_hosts=base / "known_hosts",
    )
    try:
        fleet.root.mkdir()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        authorized = base / "authorized_keys"
        authorized.write_text(_keygen(fleet.client_key) + "\n")
        fleet.known_hosts.write_text("")
        sh("ip", "link", "add", fleet.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{fleet.subnet}.1/24", "dev", fleet.bridge)
        sh("ip", "link", "set", fleet.bridge, "up")
        for i in range(count):
            _add_host(fleet, i, tag, authorized, quiet_rc)
        _wait_ssh(fleet)
    except BaseException:
        fleet.close()
        raise
    return fleet
