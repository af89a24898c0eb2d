"""The service definition rendered per version, and the service manager picked for a host.

Two implementations of the interface (`service_manager.ServiceManager`): `SupervisordManager`
(executor/services/supervisord.py) and `SystemdManager` (executor/services/systemd.py); `make_service_manager`
picks one and imports only its module.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from obsplan.executor.host.layout import Layout
from obsplan.executor.services.service_manager import ServiceManager
from obsplan.executor.services.service_render import render_service, write_files

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import Runtime

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


def make_service_manager(kind: str, layout: Layout) -> ServiceManager:
    """`auto`: systemd when it is running and the root is the real host, else obsplan's own supervisord."""
    if kind == "auto":
        booted = Path("/run/systemd/system").is_dir()
        kind = "systemd" if booted and layout.root.resolve() == Path("/") else "supervisord"
    if kind == "systemd":
        from obsplan.executor.services.systemd import SystemdManager

        return SystemdManager(layout)
    if kind == "supervisord":
        from obsplan.executor.services.supervisord import SupervisordManager

        return SupervisordManager(layout)
    raise ObsplanError(
        f"unknown service manager {kind!r}", key="--service-manager", hint="auto, systemd or supervisord"
    )
