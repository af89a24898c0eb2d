"""Render a component's service definition (the lock's `runtime.service`, from policies/services.yaml) for
one version on one host: argv, environment and the files it needs, then write those files.

Secrets are read here, on the host, under --root (e.g. `runtime.mysql.password_file`), and only end up in
the files and environment of the service: never in the lock, an event, the history or an error message.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
from obsplan.executor.host.layout import Layout

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import Runtime
from obsplan.lock.service_def import ArgItem, Check, ServiceDef
from obsplan.safeio.fsio import write_atomic

ENV_DIR = "/etc/obsplan/env"


class SecretUnreadable(ObsplanError):
    """A secret named in the lock's runtime settings cannot be read on this host."""


@dataclass(frozen=True)
class RenderedFile:
    name: str
    path: Path
    content: str
    mode: int
    keep_existing: bool = False


@dataclass(frozen=True)
class RenderedService:
    argv: list[str]
    env: dict[str, str]
    files: list[RenderedFile]
    stale: list[Path] = field(default_factory=list)  # files of other versions, removed when switching
    env_file: Path | None = None
    reload_signal: str | None = None


def _jinja() -> jinja2.Environment:
    return jinja2.sandbox.ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def _render(env: jinja2.Environment, template: str, ctx: dict[str, Any]) -> str:
    return env.from_string(template).render(**ctx)


def _true(env: jinja2.Environment, expression: str | None, ctx: dict[str, Any]) -> bool:
    return expression is None or bool(env.compile_expression(expression)(**ctx))


def _read_secret(layout: Layout, path: str, key: str) -> str:
    host = layout.host(path)
    try:
        return host.read_text().strip("\r\n")
    except OSError as exc:
        raise SecretUnreadable(
            f"cannot read {host}: {exc.strerror}",
            key=key,
            hint="create it (mode 0600) holding only the password",
            exit_code=EXIT_FAILED,
        ) from None


def settings_context(runtime: Runtime, layout: Layout) -> dict[str, Any]:
    """The runtime settings templates may use; secrets are read from their files on the host."""
    mysql = None
    if runtime.mysql is not None:
        host, _, port = runtime.mysql.address.rpartition(":")
        password = _read_secret(layout, runtime.mysql.password_file, "runtime.mysql.password_file")
        mysql = {
            "address": runtime.mysql.address,
            "host": host,
            "port": port,
            "user": runtime.mysql.user,
            "password": password,
        }
    cluster = runtime.cluster.model_dump() if runtime.cluster else None
    storage = runtime.storage.model_dump() if runtime.storage else None
    return {"mysql": mysql, "scrape_uri": runtime.scrape_uri, "cluster": cluster, "storage": storage}


def _base_context(component: str, runtime: Runtime, version: str, layout: Layout) -> dict[str, Any]:
    bind = runtime.listen_address or ""  # empty host part: all interfaces, as upstream defaults
    return {
        "binary": str(layout.bin_dir / runtime.service_binary),
        "listen": f"[{bind}]:{runtime.port}" if ":" in bind else f"{bind}:{runtime.port}",
        "listen_host": bind,
        "port": runtime.port,
        "component": component,
        "version": version,
        "home": str(layout.current_link(component)),
        "config_file": str(layout.host(runtime.config_file)) if runtime.config_file else None,
        "data_dir": str(layout.host(runtime.data_dir)) if runtime.data_dir else None,
    }


def _host_context(component: str, runtime: Runtime) -> dict[str, Any]:
    """What file paths may use: host paths as the lock states them (prefixed with --root afterwards)."""
    return {"component": component, "config_file": runtime.config_file, "data_dir": runtime.data_dir}


def render_service(component: str, runtime: Runtime, version: str, layout: Layout) -> RenderedService:
    """argv, environment and files of `component` at `version` (the variants of that version applied)."""
    env = _jinja()
    full: ServiceDef = runtime.service
    definition = full.for_version(version)
    host_ctx = _host_context(component, runtime)
    ctx = _base_context(component, runtime, version, layout) | settings_context(runtime, layout)
    for var, path in definition.if_exists.items():
        candidate = layout.host(_render(env, path, host_ctx))
        ctx[var] = str(candidate) if candidate.is_file() else None
    active = [f for f in definition.files if _true(env, f.when, ctx)]
    paths = {f.name: layout.host(_render(env, f.path, host_ctx)) for f in active}
    ctx["files"] = {name: str(p) for name, p in paths.items()}
    files = [
        RenderedFile(f.name, paths[f.name], _render(env, f.content, ctx), int(f.mode, 8), f.keep_existing)
        for f in active
    ]
    environment = {k: _render(env, v, ctx) for k, v in definition.env.items()}
    env_file = layout.host(f"{ENV_DIR}/{component}.env")
    if environment:
        files.append(RenderedFile("environment", env_file, environment_file(environment), 0o600))
    stale = [] if environment else [env_file]
    for f in full.all_files():
        if f.name not in paths and not f.keep_existing and (path := _render(env, f.path, host_ctx)) not in ("", "None"):
            stale.append(layout.host(path))
    return RenderedService(
        _argv(env, definition.argv, ctx),
        environment,
        files,
        stale,
        env_file if environment else None,
        definition.reload_signal,
    )


def _argv(env: jinja2.Environment, items: list[ArgItem], ctx: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for item in items:
        if isinstance(item, str):
            argv.append(_render(env, item, ctx))
        elif item.each is not None:
            items = env.compile_expression(item.each)(**ctx) or []
            argv += [_render(env, item.arg, ctx | {"item": x}) for x in items]
        elif _true(env, item.when, ctx):
            argv.append(_render(env, item.arg, ctx))
    return argv


def render_check(component: str, runtime: Runtime, version: str, layout: Layout, check: Check, tool: Path) -> list[str]:
    """The argv of `version`'s configuration checker (`check:` of policies/services.yaml); `tool` is its path."""
    ctx = _base_context(component, runtime, version, layout) | {"tool": str(tool)}
    return _argv(_jinja(), check.argv, ctx)


def environment_file(environment: dict[str, str]) -> str:
    """systemd EnvironmentFile syntax: KEY="value" with backslash escapes."""
    lines = [f'{k}="{_escape(v)}"' for k, v in environment.items()]
    return "# Written by obsplan from the service definition; do not edit.\n" + "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _owner(user: str | None) -> tuple[int, int] | None:
    if user is None:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ObsplanError(
            f"service user {user!r} does not exist on this host",
            key="runtime.user",
            hint=f"create it (useradd --system {user}) or remove runtime.user",
            exit_code=EXIT_FAILED,
        ) from None
    return entry.pw_uid, entry.pw_gid


def _file_current(f: RenderedFile, owner: tuple[int, int] | None) -> bool:
    try:
        st = f.path.stat()
        same = f.path.read_text() == f.content
    except OSError:
        return False
    if f.keep_existing:
        return True
    return same and (st.st_mode & 0o777) == f.mode and (owner is None or (st.st_uid, st.st_gid) == owner)


def files_current(service: RenderedService, user: str | None) -> bool:
    """True when every file is written as rendered (content, mode, owner) and no stale one is left."""
    owner = _owner(user)
    return all(_file_current(f, owner) for f in service.files) and not any(p.exists() for p in service.stale)


def write_files(service: RenderedService, user: str | None) -> list[str]:
    """Write the service's files (credentials 0600, owned by the service user), remove stale ones.
    Returns the paths changed (paths only: contents may be secret)."""
    owner = _owner(user)
    changed = []
    for f in service.files:
        if (f.keep_existing and f.path.exists()) or _file_current(f, owner):
            continue
        write_atomic(f.path, f.content)  # created 0600 (mkstemp), then the definition's mode
        if owner is not None:
            os.chown(f.path, *owner)
        f.path.chmod(f.mode)
        changed.append(str(f.path))
    for path in service.stale:
        if path.exists():
            path.unlink()
            changed.append(f"removed:{path}")
    return changed


def all_file_paths(component: str, runtime: Runtime, layout: Layout) -> list[Path]:
    """Every file the definition may write, for any version (what a rollback point backs up)."""
    env, host_ctx = _jinja(), _host_context(component, runtime)
    paths = [layout.host(f"{ENV_DIR}/{component}.env")]
    for f in runtime.service.all_files():
        path = _render(env, f.path, host_ctx)
        if path not in ("", "None") and not f.keep_existing:
            paths.append(layout.host(path))
    return paths
