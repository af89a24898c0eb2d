"""A component's files as they are now (service definition, config, credentials, environment file), copied into a
new backup directory inside the root: what a rollback point, or a hand-placed version accepted, restores."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan.executor.reporters import now_iso
from obsplan.executor.services.service_render import all_file_paths

if TYPE_CHECKING:
    from obsplan.executor.stages.step_context import Context

    from obsplan.lock.lockfile import Runtime


def backup_files(ctx: Context, component: str, runtime: Runtime, label: str) -> tuple[Path, list[str]]:
    """Copy the component's files that exist into `backups/<component>/<stamp>-<label>`: (it, their paths)."""
    layout = ctx.layout
    stamp = now_iso().replace(":", "").replace("+0000", "Z")
    backup = layout.backup_dir(component, f"{stamp}-{label}")
    backup.mkdir(parents=True, exist_ok=True)
    candidates = [ctx.services.definition_path(component)]
    if runtime.config_file:
        candidates.append(layout.host(runtime.config_file))
    candidates += all_file_paths(component, runtime, layout)  # credentials, environment file
    files = []
    for f in candidates:
        if f.is_file():
            shutil.copy2(f, backup / str(f.relative_to(layout.root)).replace("/", "__"))
            files.append(str(f.relative_to(layout.root)))
    return backup, files
