"""Stage 3c, rehearsal of a one-way step (one that sets a rollback floor), in `safe` mode or with --rehearse:
the target release tried on a disposable copy of the data before anything is switched (`executor/checks/rehearsal.py`).
Other steps, and every step of the other modes, are not rehearsed: a default apply stays as fast as before."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import obsplan.executor.checks.rehearsal as rh
from obsplan.executor.artifacts.store import find_binary
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import RehearsalResult, StepFailed

from obsplan.lock.service_def import Rehearsal


def wanted(facts: StepFacts) -> Rehearsal | None:
    """The rehearsal this step gets: one-way, asked for (safe mode, --rehearse), and defined for the target."""
    step, ctx, rt = facts.step, facts.ctx, facts.runtime
    if step.rollback_floor is None or not (ctx.mode == "safe" or ctx.rehearse) or rt.data_dir is None:
        return None
    return rt.service.for_version(step.to_version).rehearsal


def run(facts: StepFacts, journal: StepJournal) -> RehearsalResult:
    """Rehearse the target on a scratch copy of the data when the step gets a rehearsal (`wanted`)."""
    spec = wanted(facts)
    if spec is None:
        return RehearsalResult(False)
    step, ctx = facts.step, facts.ctx
    if ctx.dry_run:
        facts.emit("would_rehearse", version=step.to_version, floor=step.rollback_floor)
        return RehearsalResult(False)
    with journal.stage("rehearse"):
        scratch = ctx.layout.root / rh.SCRATCH / facts.c
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        t0 = time.monotonic()
        try:
            observed = _rehearse(facts, spec, scratch)
        except (rh.RehearsalFailed, OSError) as exc:
            raise StepFailed(
                "rehearsal_failed",
                f"{facts.c} {step.to_version} rehearsed on a copy of {facts.runtime.data_dir}: {exc}. Nothing was "
                "switched; the copy was discarded",
            ) from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        seconds = round(time.monotonic() - t0, 3)
        facts.emit("rehearsed", version=step.to_version, seconds=seconds, **observed)
    return RehearsalResult(True, {"seconds": seconds, **observed})


def _rehearse(facts: StepFacts, spec: Rehearsal, scratch: Path) -> dict[str, object]:
    layout, rt, client, version = facts.ctx.layout, facts.runtime, facts.ctx.client, facts.step.to_version
    assert rt.data_dir is not None
    name = rh.held_series(client, rt.probe_host(), rt.port)
    at = time.time()
    copied = rh.copy_data(layout.host(rt.data_dir), scratch / "data", spec)
    config = rh.stripped_config(layout.host(rt.config_file) if rt.config_file else None, scratch / "config.yml", spec)
    port = rh.free_loopback_port()
    release = layout.version_dir(facts.c, version)
    binary = find_binary(release, rt.binaries[rt.service_binary])
    if binary is None:
        raise rh.RehearsalFailed(f"{release} has no {rt.service_binary}")
    log = scratch / "rehearsal.log"
    proc = rh.start(facts.c, rh.scratch_runtime(rt, layout, scratch, config, port), version, layout, binary, log)
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
