"""Service managers behind one small interface, and the service definition rendered per version.

`SupervisordManager` drives a real supervisord through its XML-RPC interface over the unix socket; it
uses the supervisord serving `<root>/etc/supervisor/supervisord.conf`, writing that configuration and
starting supervisord when none runs. `SystemdManager` writes units under `<root>/etc/systemd/system`
and calls `systemctl` (only meaningful with `--root /` on a systemd host).
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import http.client
import shlex
import shutil
import socket
import subprocess
import threading
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from obsplan.errors import EXIT_FAILED, ObsplanError
from obsplan.lockfile import Runtime
from obsplan.templating import shipped_templates

from .layout import Layout
from .service_render import render_service, write_files


@dataclass(frozen=True)
class ServiceStatus:
    state: str  # RUNNING, STARTING, BACKOFF, FATAL, EXITED, STOPPED, ABSENT, UNKNOWN (supervisord names)
    pid: int | None

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"

    @property
    def given_up(self) -> bool:
        """The manager stopped trying: waiting longer for health cannot succeed."""
        return self.state in ("FATAL", "EXITED", "ABSENT")


class ServiceManager(Protocol):
    name: str

    def reachable(self) -> tuple[bool, str]: ...
    def definition_path(self, service: str) -> Path: ...
    def render(self, ctx: dict[str, Any]) -> str: ...
    def install_unit(self, service: str, rendered: str) -> bool: ...
    def remove_unit(self, service: str) -> None: ...
    def restart(self, service: str) -> None: ...
    def stop(self, service: str) -> None: ...
    def status(self, service: str) -> ServiceStatus: ...


def _write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    from obsplan.fsio import write_atomic

    if path.is_file() and path.read_text() == text:
        return False
    write_atomic(path, text)
    path.chmod(mode)
    return True


# --------------------------------------------------------------------------------------------------------
# the service definition (policies/services.yaml, copied into the lock) rendered for one version


def service_command(component: str, runtime: Runtime, version: str, layout: Layout) -> list[str]:
    """argv of the service for `version`: flags differ between versions (e.g. node_exporter 1.5.0)."""
    return render_service(component, runtime, version, layout).argv


def prepare_host_dirs(component: str, runtime: Runtime, layout: Layout, version: str) -> list[str]:
    """Create the data directory and write the files the service needs at `version` (a starter config only
    when none exists; credentials 0600 owned by the service user); returns what changed."""
    created = []
    if runtime.data_dir:
        data = layout.host(runtime.data_dir)
        if not data.is_dir():
            data.mkdir(parents=True)
            created.append(str(data))
    created += write_files(render_service(component, runtime, version, layout), runtime.user)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    return created


def render_context(component: str, runtime: Runtime, version: str, layout: Layout) -> dict[str, Any]:
    service = render_service(component, runtime, version, layout)
    return {
        "component": component,
        "version": version,
        "description": f"{component} {version} (managed by obsplan)",
        "documentation": "https://github.com/ (see the obsplan lock for the source repository)",
        "argv": service.argv,
        "exec_start": " ".join(_systemd_quote(a) for a in service.argv),
        "command": " ".join(shlex.quote(a) for a in service.argv),
        "environment": _supervisord_environment(service.env),
        "env_file": str(service.env_file) if service.env_file else None,
        "user": runtime.user,
        "group": None,
        "working_dir": str(layout.host(runtime.data_dir)) if runtime.data_dir else None,
        "reload_signal": service.reload_signal,
        "log_file": str(layout.log_dir / f"{component}.log"),
    }


def _supervisord_environment(env: dict[str, str]) -> str | None:
    """supervisord's `environment=KEY="v",...` (it has no environment file; `%` is its interpolation)."""
    if not env:
        return None
    items = []
    for key, value in env.items():
        quote = '"' if '"' not in value else "'"
        if quote in value:
            raise ObsplanError(
                f"the value of {key} holds both quote characters, which supervisord cannot pass",
                hint="use --service-manager systemd or change the value",
                exit_code=EXIT_FAILED,
            )
        items.append(f"{key}={quote}{value.replace('%', '%%')}{quote}")
    return ",".join(items)


def _systemd_quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_=./:,@+" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------------------------
# supervisord


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection and host == self._connection[0] and self._connection[1] is not None:
            return self._connection[1]
        conn = _UnixHTTPConnection(self._path, self._timeout)
        self._connection = host, conn
        return conn


FAULT_BAD_NAME = 10
FAULT_ALREADY_STARTED = 60
FAULT_NOT_RUNNING = 70
FAULT_ALREADY_ADDED = 90
FAULT_STILL_RUNNING = 91


class SupervisordManager:
    name = "supervisord"

    def __init__(self, layout: Layout, binary: str = "supervisord") -> None:
        self.layout = layout
        self.binary = binary
        self.conf = layout.host("/etc/supervisor/supervisord.conf")
        self.conf_d = layout.host("/etc/supervisor/conf.d")
        self._lock = threading.RLock()

    # -- configuration ---------------------------------------------------------------------------------
    @property
    def socket_path(self) -> Path:
        if self.conf.is_file():
            parser = configparser.RawConfigParser()
            parser.read(self.conf)
            if parser.has_option("unix_http_server", "file"):
                value = parser.get("unix_http_server", "file").split(";")[0].strip()
                return Path(value.replace("%(here)s", str(self.conf.parent)))
        return self.layout.host("/run/supervisor.sock")

    @property
    def pidfile(self) -> Path:
        return self.layout.host("/run/supervisord.pid")

    def main_config(self) -> str:
        sock = self.layout.host("/run/supervisor.sock")
        logs = self.layout.host("/var/log/supervisor")
        return (
            "; Written by obsplan: the supervisord serving this root. Programs live in conf.d/.\n"
            f"[unix_http_server]\nfile={sock}\nchmod=0700\n\n"
            f"[supervisord]\nlogfile={logs / 'supervisord.log'}\npidfile={self.pidfile}\nchildlogdir={logs}\n"
            f"identifier=obsplan-{hashlib.sha256(str(self.layout.root).encode()).hexdigest()[:8]}\n\n"
            "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{sock}\n\n"
            f"[include]\nfiles = {self.conf_d}/*.conf\n"
        )

    def _proxy(self, timeout: float = 30.0) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy("http://localhost", transport=_UnixTransport(str(self.socket_path), timeout))

    def _call(self, method: str, *args: Any, timeout: float = 30.0) -> Any:
        with self._proxy(timeout) as proxy:
            return getattr(proxy, method)(*args)

    def _running(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return self._call("supervisor.getState", timeout=3.0).get("statename") == "RUNNING"
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return False

    def reachable(self) -> tuple[bool, str]:
        """True when supervisord answers, or can be started (its binary exists). Changes nothing."""
        if self._running():
            return True, f"supervisord answering on {self.socket_path}"
        if shutil.which(self.binary):
            return True, "supervisord not running; it will be started with " + str(self.conf)
        return False, "supervisord is neither running nor installed (apt-get install supervisor)"

    def ensure_running(self) -> None:
        with self._lock:
            if self._running():
                return
            if not self.conf.is_file():
                from obsplan.fsio import write_atomic

                write_atomic(self.conf, self.main_config())
            self.conf_d.mkdir(parents=True, exist_ok=True)
            self.layout.host("/var/log/supervisor").mkdir(parents=True, exist_ok=True)
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
            if len(str(self.socket_path)) > 100:
                raise ObsplanError(
                    f"supervisord socket path too long for a unix socket: {self.socket_path}",
                    hint="use a shorter --root",
                    exit_code=EXIT_FAILED,
                )
            exe = shutil.which(self.binary)
            if exe is None:
                raise ObsplanError(
                    "supervisord is not installed", hint="apt-get install supervisor", exit_code=EXIT_FAILED
                )
            proc = subprocess.run(
                [exe, "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
                start_new_session=True,
                check=False,
            )
            if proc.returncode != 0:
                raise ObsplanError(
                    f"supervisord -c {self.conf} failed: {(proc.stderr or proc.stdout).strip()}", exit_code=EXIT_FAILED
                )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self._running():
                    return
                time.sleep(0.1)
            raise ObsplanError(f"supervisord started but does not answer on {self.socket_path}", exit_code=EXIT_FAILED)

    def shutdown(self) -> None:
        """Stop supervisord and its programs (used by tests and by `--root` rehearsals)."""
        if self._running():
            with contextlib.suppress(OSError, xmlrpc.client.Error, http.client.HTTPException):
                self._call("supervisor.shutdown", timeout=10.0)

    # -- ServiceManager --------------------------------------------------------------------------------------
    def definition_path(self, service: str) -> Path:
        return self.conf_d / f"{service}.conf"

    def render(self, ctx: dict[str, Any]) -> str:
        return shipped_templates().get_template("supervisord-program.conf.j2").render(**ctx)

    def install_unit(self, service: str, rendered: str) -> bool:
        """Write the program section; `reread` + `update` through XML-RPC when it changed."""
        self.ensure_running()
        # 0600: a program's environment may hold credentials (supervisord has no environment file)
        changed = _write_if_changed(self.definition_path(service), rendered, 0o600)
        with self._lock:
            added, modified, removed = self._call("supervisor.reloadConfig")[0]
            if service in modified or service in removed:
                self._stop_group(service)
                self._call("supervisor.removeProcessGroup", service)
            if service in added or service in modified or changed and not self._known(service):
                try:
                    self._call("supervisor.addProcessGroup", service)
                except xmlrpc.client.Fault as exc:
                    if exc.faultCode != FAULT_ALREADY_ADDED:
                        raise
        return changed

    def _known(self, service: str) -> bool:
        try:
            self._call("supervisor.getProcessInfo", service)
            return True
        except xmlrpc.client.Fault:
            return False

    def _stop_group(self, service: str) -> None:
        try:
            self._call("supervisor.stopProcessGroup", service)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode not in (FAULT_BAD_NAME, FAULT_NOT_RUNNING):
                raise

    def remove_unit(self, service: str) -> None:
        path = self.definition_path(service)
        if not path.exists():
            return
        path.unlink()
        if not self._running():
            return
        with self._lock:
            self._call("supervisor.reloadConfig")
            self._stop_group(service)
            try:
                self._call("supervisor.removeProcessGroup", service)
            except xmlrpc.client.Fault as exc:
                if exc.faultCode not in (FAULT_BAD_NAME, FAULT_STILL_RUNNING):
                    raise

    def restart(self, service: str) -> None:
        self.ensure_running()
        self.stop(service)
        try:
            self._call("supervisor.startProcess", service, False)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != FAULT_ALREADY_STARTED:
                raise ObsplanError(
                    f"supervisord could not start {service}: {exc.faultString}", exit_code=EXIT_FAILED
                ) from None

    def stop(self, service: str) -> None:
        if not self._running():
            return
        try:
            self._call("supervisor.stopProcess", service, True)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode not in (FAULT_NOT_RUNNING, FAULT_BAD_NAME):
                raise

    def status(self, service: str) -> ServiceStatus:
        if not self._running():
            return ServiceStatus("ABSENT", None)
        try:
            info = self._call("supervisor.getProcessInfo", service, timeout=5.0)
        except xmlrpc.client.Fault:
            return ServiceStatus("ABSENT", None)
        except (OSError, http.client.HTTPException):
            return ServiceStatus("UNKNOWN", None)
        return ServiceStatus(info["statename"], info["pid"] or None)


# --------------------------------------------------------------------------------------------------------
# systemd


class SystemdManager:
    name = "systemd"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.unit_dir = layout.host("/etc/systemd/system")

    def _systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise ObsplanError(f"systemctl {' '.join(args)} failed: {proc.stderr.strip()}", exit_code=EXIT_FAILED)
        return proc

    def reachable(self) -> tuple[bool, str]:
        if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
            return False, "systemd is not running on this host (use --service-manager supervisord)"
        if self.layout.root.resolve() != Path("/"):
            return False, "systemd only manages units under / (use --service-manager supervisord with --root)"
        return True, "systemd"

    def definition_path(self, service: str) -> Path:
        return self.unit_dir / f"{service}.service"

    def render(self, ctx: dict[str, Any]) -> str:
        return shipped_templates().get_template("systemd.service.j2").render(**ctx)

    def install_unit(self, service: str, rendered: str) -> bool:
        changed = _write_if_changed(self.definition_path(service), rendered)
        if changed:
            self._systemctl("daemon-reload")
            self._systemctl("enable", f"{service}.service", check=False)
        return changed

    def remove_unit(self, service: str) -> None:
        path = self.definition_path(service)
        if path.exists():
            self._systemctl("disable", "--now", f"{service}.service", check=False)
            path.unlink()
            self._systemctl("daemon-reload")

    def restart(self, service: str) -> None:
        self._systemctl("restart", f"{service}.service")

    def stop(self, service: str) -> None:
        self._systemctl("stop", f"{service}.service", check=False)

    def status(self, service: str) -> ServiceStatus:
        proc = self._systemctl("show", "-p", "ActiveState,SubState,MainPID", f"{service}.service", check=False)
        props = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        state = {"active": "RUNNING", "activating": "STARTING", "failed": "FATAL", "inactive": "STOPPED"}.get(
            props.get("ActiveState", ""), "UNKNOWN"
        )
        pid = int(props.get("MainPID", "0") or 0) or None
        return ServiceStatus(state, pid)


def make_service_manager(kind: str, layout: Layout) -> ServiceManager:
    """`auto`: systemd when it is running and the root is the real host, else obsplan's own supervisord."""
    if kind == "auto":
        booted = Path("/run/systemd/system").is_dir()
        kind = "systemd" if booted and layout.root.resolve() == Path("/") else "supervisord"
    if kind == "systemd":
        return SystemdManager(layout)
    if kind == "supervisord":
        return SupervisordManager(layout)
    raise ObsplanError(
        f"unknown service manager {kind!r}", key="--service-manager", hint="auto, systemd or supervisord"
    )
