"""Accepting a hand change (seed 003: "prometheus already at 3.8.1 (manually upgraded), skipping").

A binary placed by hand over obsplan's link in /usr/local/bin is drift (`drift.detect`). It is *accepted* —
by apply when the version it reports is one the lock's path allows (the target or a step on the way), or by
`obsplan adopt COMPONENT` for any version — as follows: its binaries are kept in
`/opt/obsplan/<component>/<version>/`, the service definition and files are saved as a rollback point to the
version obsplan had linked (so `obsplan rollback C` goes back to it), `current` and the /usr/local/bin links
point at the kept version, the service definition is rendered for it, and the state records it as installed
(source `manual`). Nothing is restarted (a definition that differs in more than its header comment is
applied by the service manager as it applies any changed unit: supervisord restarts such a program).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan.executor.host.probes import probe_binary_version
from obsplan.executor.recovery.backups import backup_files
from obsplan.executor.services.switch_version import link_version

if TYPE_CHECKING:
    from obsplan.executor.host.stepfacts import StepFacts

MANUAL = "manually_upgraded"  # the reason of the steps a hand change went past
LABEL = "manual"  # the rollback point and history kind of an accepted hand change
KEPT_MARK = ".obsplan-kept-from"


def hand_placed(facts: StepFacts) -> tuple[Path, str | None] | None:
    """(the hand-placed service binary, the version it reports) when obsplan manages the component and its
    exposed binary is no longer obsplan's link; else None."""
    layout = facts.ctx.layout
    if layout.current_version(facts.c) is None:
        return None
    exposed = layout.bin_dir / facts.runtime.service_binary
    if not exposed.is_file():
        return None
    if exposed.is_symlink() and exposed.resolve().is_relative_to(layout.component_dir(facts.c).resolve()):
        return None
    return exposed, probe_binary_version(exposed, facts.runtime.version_args)


def accept(facts: StepFacts, binary: Path, version: str, floor: str | None, label: str = LABEL) -> int:
    """Make the hand-placed `binary` (reporting `version`) obsplan's install of it; returns the rollback point
    to the version obsplan had linked before."""
    ctx, c = facts.ctx, facts.c
    assert ctx.db is not None
    previous = ctx.layout.current_version(c)
    rendered = facts.rendered(version)  # before anything changes: a definition that cannot render refuses here
    _keep(facts, binary, version)
    backup, files = backup_files(facts.ctx, facts.c, facts.runtime, label)
    point = ctx.db.add_point(
        component=c,
        step_id=None,
        from_version=previous,
        to_version=version,
        version_dir=str(ctx.layout.version_dir(c, previous)) if previous else None,
        backup_dir=str(backup),
        files=files,
        data_dir=str(ctx.layout.host(facts.runtime.data_dir)) if facts.runtime.data_dir else None,
        floor=floor,
        status="available" if previous else "initial",
        label=label,
    )
    unlinked = link_version(facts, version)
    ctx.services.install_unit(c, rendered)  # the same program: its manager does not restart it
    with ctx.db.transaction():
        ctx.history(c, f"{label}:{c}:{version}").record(label, previous, version, success=True)
        ctx.db.set_installed(c, version, previous=previous, floor=floor, source="manual", last_result=label)
    ctx.emit(c, "manual_change_accepted", version=version, previous=previous, point=point, unlinked=unlinked)
    return point


def _keep(facts: StepFacts, binary: Path, version: str) -> Path:
    """Copy the hand-placed binaries (regular files, not obsplan's links) into the version's directory."""
    layout, c = facts.ctx.layout, facts.c
    vdir = layout.version_dir(c, version)
    if vdir.is_dir():
        return vdir
    tmp = vdir.with_name(f".tmp-{MANUAL}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, pattern in facts.runtime.binaries.items():
        own = name == facts.runtime.service_binary  # (a link made by hand: the file it points at)
        src = binary.resolve() if own else layout.bin_dir / name
        if src.is_file() and (own or not src.is_symlink()):
            dest = tmp / pattern.replace("*", MANUAL)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    (tmp / KEPT_MARK).write_text(f"{binary}\n")
    os.rename(tmp, vdir)
    return vdir
