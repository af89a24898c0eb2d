"""`SystemdManager`: writes units under `<root>/etc/systemd/system` and calls `systemctl` (only
meaningful with `--root /` on a systemd host)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from obsplan.executor.host.layout import Layout
from obsplan.executor.services.service_manager import ServiceStatus, write_if_changed

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.kernel.templating import shipped_templates


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
        changed = write_if_changed(self.definition_path(service), rendered)
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
