"""Stage 3c, rehearsal of a one-way step (one that sets a rollback floor), in `safe` mode or with --rehearse:
the target release tried on a disposable copy of the data before anything is switched (`executor/checks/rehearsal.py`).
Other steps, and every step of the other modes, are not rehearsed: a default apply stays as fast as before."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import obsplan.executor.checks.rehearsal as rh
from obsplan.executor.artifacts.store import find_binary
from obsplan.executor.stages.step_results import StepFailed

from obsplan.lock.service_def import Rehearsal

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def wanted(r: StepRunner) -> Rehearsal | None:
    """The rehearsal this step gets: one-way, asked for (safe mode, --rehearse), and defined for the target."""
    if r.step.rollback_floor is None or not (r.ctx.mode == "safe" or r.ctx.rehearse) or r.runtime.data_dir is None:
        return None
    return r.runtime.service.for_version(r.step.to_version).rehearsal


def run(r: StepRunner) -> None:
    spec = wanted(r)
    if spec is None:
        return
    if r.ctx.dry_run:
        r.emit("would_rehearse", version=r.step.to_version, floor=r.step.rollback_floor)
        return
    with r.stage("rehearse"):
        scratch = r.ctx.layout.root / rh.SCRATCH / r.c
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        t0 = time.monotonic()
        try:
            facts = _rehearse(r, spec, scratch)
        except (rh.RehearsalFailed, OSError) as exc:
            raise StepFailed(
                "rehearsal_failed",
                f"{r.c} {r.step.to_version} rehearsed on a copy of {r.runtime.data_dir}: {exc}. Nothing was "
                "switched; the copy was discarded",
            ) from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        r.emit("rehearsed", version=r.step.to_version, seconds=round(time.monotonic() - t0, 3), **facts)


def _rehearse(r: StepRunner, spec: Rehearsal, scratch: Path) -> dict[str, object]:
    layout, rt, client = r.ctx.layout, r.runtime, r.ctx.client
    assert rt.data_dir is not None
    name = rh.held_series(client, rt.probe_host(), rt.port)
    at = time.time()
    copied = rh.copy_data(layout.host(rt.data_dir), scratch / "data", spec)
    config = rh.stripped_config(layout.host(rt.config_file) if rt.config_file else None, scratch / "config.yml", spec)
    port = rh.free_loopback_port()
    release = layout.version_dir(r.c, r.step.to_version)
    binary = find_binary(release, rt.binaries[rt.service_binary])
    if binary is None:
        raise rh.RehearsalFailed(f"{release} has no {rt.service_binary}")
    log = scratch / "rehearsal.log"
    proc = rh.start(r.c, rh.scratch_runtime(rt, layout, scratch, config, port), r.step.to_version, layout, binary, log)
    try:
        rh.wait_ready(proc, client, f"http://127.0.0.1:{port}{rt.health_path}", spec.ready_timeout_seconds, log)
        count = rh.answered(client, port, name, at) if name else None
        if name and not count:
            raise rh.RehearsalFailed(f"ready, but it answers no series of {name!r}, which the running version holds")
    finally:
        rh.stop(proc)
    return {
        "port": port,
        "series": name,
        "answered": count,
        "linked_files": copied.linked,
        "copied_files": copied.copied,
    }
