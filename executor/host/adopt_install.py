"""Adoption of a component installed without obsplan (binary in /usr/local/bin or on PATH, a unit or program
section, a process serving it started by hand).

The first apply keeps what was there as rollback point `adopted`: the binary (copied into
`/opt/obsplan/<component>/<version>/`, so obsplan can run it again), the unit/program files and the
configuration (copied into the backup directory). Once that backup is safe, processes started outside obsplan
that run the adopted binary or hold the component's port are stopped (a differently named systemd unit is
disabled) and obsplan's own unit starts the target. `obsplan rollback C` then restores the adopted version under
obsplan's service manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan.executor.host.facts_collect import find_binary
from obsplan.executor.host.probes import pid_alive, probe_binary_version
from obsplan.executor.reporters import now_iso

if TYPE_CHECKING:
    from obsplan.executor.host.stepfacts import StepFacts
    from obsplan.executor.stages.step_context import Context
    from obsplan.executor.state.state_db import RollbackPoint

ADOPTED = "adopted"
ORIGIN_MARK = ".obsplan-adopted-from"
_UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
STOP_WAIT = 10.0


def unit_names(component: str) -> list[str]:
    """Names a hand-made or packaged unit of the component goes by (Debian: prometheus-node-exporter)."""
    dashed = component.replace("_", "-")
    return sorted({component, dashed, f"prometheus-{dashed}"})


def foreign_files(ctx: Context, runner: StepFacts) -> list[Path]:
    """Unit files, program sections and configuration of the component found under the root."""
    layout = ctx.layout
    found = [ctx.services.definition_path(runner.c)]
    for d in _UNIT_DIRS:
        found += [layout.host(f"{d}/{n}.service") for n in unit_names(runner.c)]
    found += [layout.host(f"/etc/supervisor/conf.d/{n}.conf") for n in unit_names(runner.c)]
    if runner.runtime.config_file:
        found.append(layout.host(runner.runtime.config_file))
    return sorted({f for f in found if f.is_file()})


def _owned_by_obsplan(path: Path, ctx: Context, component: str) -> bool:
    try:
        return path.resolve().is_relative_to(ctx.layout.component_dir(component).resolve())
    except OSError:
        return False


def adopt(ctx: Context, runner: StepFacts) -> RollbackPoint | None:
    """Save an install obsplan did not make as rollback point `adopted`; None when there is none to adopt."""
    assert ctx.db is not None
    c, layout = runner.c, ctx.layout
    if layout.current_version(c) is not None:
        return None
    binary = find_binary(runner.runtime, layout) or serving_binary(ctx, runner)
    if binary is None or _owned_by_obsplan(binary, ctx, c):
        return None
    version = probe_binary_version(binary, runner.runtime.version_args, ctx.db)
    if version is None:
        ctx.emit(
            c,
            "warning",
            code="adopt_unknown_version",
            binary=str(binary),
            message=f"{binary} does not report a version; installing over it without an adopted point",
        )
        return None
    vdir = _keep_binaries(ctx, runner, binary, version)
    stamp = now_iso().replace(":", "").replace("+0000", "Z")
    backup = layout.backup_dir(c, f"{stamp}-{ADOPTED}")
    backup.mkdir(parents=True, exist_ok=True)
    files = []
    for f in foreign_files(ctx, runner):
        shutil.copy2(f, backup / str(f.relative_to(layout.root)).replace("/", "__"))
        files.append(str(f.relative_to(layout.root)))
    shutil.copy2(binary.resolve(), backup / f"binary__{runner.runtime.service_binary}")
    point_id = ctx.db.add_point(
        component=c,
        step_id=runner.step.id,
        from_version=version,
        to_version=runner.step.to_version,
        version_dir=str(vdir),
        backup_dir=str(backup),
        files=files,
        data_dir=None,
        floor=None,
        status="pending",
        label=ADOPTED,
    )
    ctx.db.set_installed(c, version, source=ADOPTED, last_result=ADOPTED, last_step=runner.step.id)
    ctx.emit(
        c,
        ADOPTED,
        step=runner.step.id,
        version=version,
        binary=str(binary),
        point=point_id,
        backup=str(backup),
        files=files,
        version_dir=str(vdir),
    )
    return ctx.db.point(point_id)


def serving_binary(ctx: Context, runner: StepFacts) -> Path | None:
    """The executable of a process started outside obsplan that serves the component on its port."""
    for pid in port_holders(runner.runtime.port):
        with contextlib.suppress(OSError):
            exe = Path(os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)"))
            if exe.is_file() and runner.served_version() is not None:
                return exe
    return None


def _keep_binaries(ctx: Context, runner: StepFacts, binary: Path, version: str) -> Path:
    """Copy the adopted binaries into `/opt/obsplan/<c>/<version>/` where the catalog glob finds them."""
    vdir = ctx.layout.version_dir(runner.c, version)
    if vdir.is_dir():
        return vdir
    tmp = vdir.with_name(f".tmp-{ADOPTED}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, pattern in runner.runtime.binaries.items():
        src = binary if name == runner.runtime.service_binary else binary.parent / name
        if src.is_file():
            dest = tmp / pattern.replace("*", ADOPTED)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src.resolve(), dest)
    (tmp / ORIGIN_MARK).write_text(f"{binary.resolve()}\n")
    os.rename(tmp, vdir)
    return vdir


def take_over(ctx: Context, runner: StepFacts, point: RollbackPoint) -> list[int]:
    """Stop what serves the adopted component outside obsplan (after its backup is safe); returns the pids."""
    origin = Path(point.version_dir or "") / ORIGIN_MARK
    binary = Path(origin.read_text().strip()) if origin.is_file() else None
    own = ctx.services.status(runner.c).pid
    pids = sorted({p for p in _running(binary) + port_holders(runner.runtime.port) if p not in (own, os.getpid())})
    units = _disable_foreign_units(ctx, runner)
    for pid in pids:
        _stop(pid)
    if pids or units:
        ctx.emit(runner.c, "took_over", step=runner.step.id, stopped_pids=pids, disabled_units=units)
    return pids


def _disable_foreign_units(ctx: Context, runner: StepFacts) -> list[str]:
    """On systemd, a unit of another name than obsplan's would start the old binary again: disable it."""
    if ctx.services.name != "systemd":
        return []
    own = ctx.services.definition_path(runner.c).name
    names = [f"{n}.service" for n in unit_names(runner.c) if f"{n}.service" != own]
    names = [n for n in names if any(ctx.layout.host(f"{d}/{n}").is_file() for d in _UNIT_DIRS)]
    for n in names:
        subprocess.run(["systemctl", "disable", "--now", n], capture_output=True, timeout=120, check=False)
    return names


def _running(binary: Path | None) -> list[int]:
    """Processes whose executable is `binary`."""
    if binary is None:
        return []
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(d / "exe").removesuffix(" (deleted)") == str(binary):
                    out.append(int(d.name))
    return out


def port_holders(port: int) -> list[int]:
    """Processes holding a listening TCP socket on `port` (any address, IPv4 or IPv6), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return []
    wanted = {f"socket:[{i}]" for i in inodes}
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in wanted for fd in (d / "fd").iterdir()):
                out.append(int(d.name))
    return out


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running and not a zombie (a stopped child of ours lingers as one until reaped)."""
    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
