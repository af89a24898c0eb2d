"""`SupervisordManager`: drives a real supervisord through its XML-RPC interface over the unix socket.

It uses the supervisord serving `<root>/etc/supervisor/supervisord.conf`, writing that configuration and
starting supervisord when none runs.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import http.client
import shutil
import subprocess
import threading
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from obsplan.executor.host.layout import Layout
from obsplan.executor.services.service_manager import ServiceStatus, write_if_changed
from obsplan.executor.services.supervisord_rpc import (
    FAULT_ALREADY_ADDED,
    FAULT_ALREADY_STARTED,
    FAULT_BAD_NAME,
    FAULT_NOT_RUNNING,
    FAULT_STILL_RUNNING,
    UnixTransport,
)

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.kernel.templating import shipped_templates


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
        return xmlrpc.client.ServerProxy("http://localhost", transport=UnixTransport(str(self.socket_path), timeout))

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
            self._prepare_files()
            self._start(self._executable())
            self._wait_answering()

    def _prepare_files(self) -> None:
        """The main configuration (only when none exists) and the directories supervisord writes into."""
        if not self.conf.is_file():
            from obsplan.safeio.fsio import write_atomic

            write_atomic(self.conf, self.main_config())
        self.conf_d.mkdir(parents=True, exist_ok=True)
        self.layout.host("/var/log/supervisor").mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)

    def _executable(self) -> str:
        if len(str(self.socket_path)) > 100:
            raise ObsplanError(
                f"supervisord socket path too long for a unix socket: {self.socket_path}",
                hint="use a shorter --root",
                exit_code=EXIT_FAILED,
            )
        exe = shutil.which(self.binary)
        if exe is None:
            raise ObsplanError("supervisord is not installed", hint="apt-get install supervisor", exit_code=EXIT_FAILED)
        return exe

    def _start(self, exe: str) -> None:
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

    def _wait_answering(self) -> None:
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
        changed = write_if_changed(self.definition_path(service), rendered, 0o600)
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
