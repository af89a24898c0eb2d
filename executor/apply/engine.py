"""Apply a lock with doit (options and report in `apply_options`, the read commands in `queries`, rollback in
`rollback`, approvals in `approvals`).

Before any step runs, the facts the reviewed plan is bound to are re-checked and the whole run is refused,
naming the fact, when one changed: the lock's content hash and format version (`load_lock`), a bundle that
is not exactly this lock's (`--bundle`), a missing checksum for this host's platform and a host that is not on
the plan's path (`refusals`). With `--auto`, steps neither approved in the lock nor on this host (`obsplan
approve`) are left pending (`approval_gate`).

Each selected plan step becomes one doit task (a custom `TaskLoader2`, no dodo.py) whose `uptodate` is a
host-facts check and whose actions are the journalled stages of `step_runner.StepRunner` (`stages/`). Phases run in the
plan's order, one doit run each; `requires` become `task_dep`. doit's own dependency file lives in a
temporary directory (it is flushed only at exit); crash safety comes from our journal + host facts.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import obsplan.executor.apply.phases as phases
import obsplan.executor.apply.soak_wait as soak
import obsplan.executor.checks.postverify as postverify
import obsplan.executor.host.drift as drift
import obsplan.executor.host.host_settings as host_settings
from doit.doit_cmd import DoitMain
from obsplan.executor.apply.apply_options import (
    ApplyOptions,
    ApplyReport,
    check_options,
    make_context,
    with_host_policy,
)
from obsplan.executor.apply.approval_gate import approval_gate
from obsplan.executor.apply.doit_bridge import DoitBridge, PlanLoader, clean_stale_doit_dirs, task_name
from obsplan.executor.apply.heldback import held_back, name_requirements
from obsplan.executor.apply.hostrun import HostRun, host_run, http_client, new_run_id
from obsplan.executor.apply.plan_queries import component_chains, step_deps
from obsplan.executor.apply.refusals import refuse_unbound
from obsplan.executor.artifacts.safe_extract import disk_full
from obsplan.executor.artifacts.store import ArtifactSource, clean_stale_parts
from obsplan.executor.bundle.source import BundleSource, check_for_apply
from obsplan.executor.bundle.tarball import opened
from obsplan.executor.host.layout import APPLIED_LOCK, Layout
from obsplan.executor.host.probes import host_platform
from obsplan.executor.reporters import Event, Reporter
from obsplan.executor.services.managers import make_service_manager
from obsplan.executor.services.service_manager import ServiceManager
from obsplan.executor.stages.history_rows import HistoryRecorder
from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_results import StepResult
from obsplan.executor.stages.step_runner import StepRunner
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, ObsplanError
from obsplan.lock.lockfile import Lock, Step
from obsplan.lock.read import LockFile, open_lock
from obsplan.safeio.fsio import write_atomic


def apply(
    lock_file: Path | LockFile,
    options: ApplyOptions,
    reporter: Reporter,
    client: httpx.Client | None = None,
    services: ServiceManager | None = None,
) -> ApplyReport:
    """Apply a lock (a path, or a lock already read once with its signature checked); failures are values in
    the report. Raises ObsplanError for bad input (exit 2). The lock's bytes are read once: what is checked,
    applied, compared with a bundle and kept as the applied lock are those bytes."""
    check_options(options)
    given = lock_file if isinstance(lock_file, LockFile) else open_lock(lock_file)
    lock, lock_path = given.lock, given.path
    lock.require("apply", str(lock_path))
    options = with_host_policy(options, lock)
    if options.phase is not None:  # an alias (`--phase core`) names its phase (`prometheus`)
        options = replace(options, phase=lock.plan.phase_named(options.phase) or options.phase)
    if not lock.host_policy.require_checksum_verification:  # the policy said so: like --allow-unverified, loudly
        options = replace(options, allow_unverified=True)
    layout = Layout(options.root.resolve())
    platform = host_platform()
    steps = _selected_steps(lock, options, lock_path, platform)
    if options.phase is not None:
        _refuse_unfinished_phases(lock, options.phase, layout, lock_path)
    services = services or make_service_manager(options.service_manager, layout)
    try:
        with http_client(client) as client, contextlib.ExitStack() as stack:
            source: ArtifactSource | None = None
            if options.bundle is not None:  # refused here, before the apply lock: nothing under --root changes
                directory = stack.enter_context(opened(options.bundle))
                check_for_apply(directory, given, platform)
                source = BundleSource(directory)
            if options.dry_run:
                db = stack.enter_context(_reading(layout))
                ctx = make_context(
                    layout, options, reporter, db, client, services, new_run_id(), source, lock.host_policy
                )
                return _run(lock, steps, ctx, options.auto)
            with host_run(layout, "apply", reporter, new_run_id()) as run:
                ctx = make_context(
                    layout, options, run.reporter, run.db, client, services, run.run_id, source, lock.host_policy
                )
                return _apply_run(run, ctx, given, steps, options.auto)
    except (OSError, sqlite3.OperationalError) as exc:  # the state, audit log or metrics on a full disk
        full = disk_full(exc, "writing obsplan's state")
        if full is None:
            raise
        full.message = f"{full.reason}: {full.message}"  # no step result carries the reason here
        raise full from None


def _selected_steps(lock: Lock, options: ApplyOptions, lock_path: Path, platform: str) -> list[Step]:
    """The steps `--phase`/`--component` select; refuses a lock without this platform, an unknown phase or
    component."""
    if lock.platforms and platform not in lock.platforms:
        raise ObsplanError(
            f"the lock has no artifacts for this host's platform {platform}",
            file=str(lock_path),
            key="platforms",
            hint=f"re-run 'obsplan plan' with {platform} in platforms",
        )
    if options.phase is not None and options.phase not in lock.plan.phases:
        names = lock.plan.phases + [f"{a} (= {p})" for a, p in sorted(lock.plan.phase_aliases.items())]
        raise ObsplanError(f"no phase {options.phase!r} in the lock", key="--phase", hint=", ".join(names))
    if options.component is not None and options.component not in lock.components:
        raise ObsplanError(
            f"no component {options.component!r} in the lock",
            key="--component",
            hint=", ".join(sorted(lock.components)),
        )
    return [
        s
        for s in lock.plan.steps
        if (options.phase is None or s.phase == options.phase)
        and (options.component is None or s.component == options.component)
    ]


@contextlib.contextmanager
def _reading(layout: Layout) -> Iterator[StateDB | None]:
    """A dry run reads the state database when there is one (it never creates it)."""
    db = StateDB.open_for_reading(layout.db_path)
    try:
        yield db
    finally:
        if db is not None:
            db.close()


def _apply_run(run: HostRun, ctx: Context, given: LockFile, steps: list[Step], auto: bool) -> ApplyReport:
    lock = given.lock
    write_atomic(ctx.layout.state_dir / APPLIED_LOCK, given.data)  # exact copy of the bytes read and checked
    run.start("apply", lock.content_sha256, ctx.mode)
    _note_interrupted(ctx)
    stale = clean_stale_parts(ctx.layout.downloads)
    if stale:
        ctx.emit(None, "stale_downloads_removed", files=stale)
    report = _run(lock, steps, ctx, auto)
    run.finish("ok" if report.exit_code == EXIT_OK else f"exit {report.exit_code}")
    return report


def _refuse_unfinished_phases(lock: Lock, phase: str, layout: Layout, lock_path: Path) -> None:
    missing = phases.unfinished_earlier(lock, phase, component_chains(lock), layout)
    if missing:
        names = ", ".join(f"{p} ({', '.join(ids)})" for p, ids in missing.items())
        first = next(iter(missing))
        raise ObsplanError(
            f"phase {phase!r} requires steps of unfinished earlier phase(s): {names}; nothing was changed",
            key="--phase",
            hint=f"apply them first: obsplan apply {lock_path} --phase {first} (or without --phase)",
            exit_code=EXIT_FAILED,
        )


def _note_interrupted(ctx: Context) -> None:
    assert ctx.db is not None
    for row in ctx.db.interrupted_steps(ctx.run_id):
        where = ctx.db.last_stage(row["step_id"])
        msg = f"run {row['run_id']} was interrupted at {where}; resumed by run {ctx.run_id}"
        ctx.db.journal(ctx.run_id, row["step_id"], row["component"], "step", "resumed", msg)
        history = HistoryRecorder(ctx.db, row["run_id"], row["component"], row["step_id"], row["at"], timed=False)
        history.record("interrupted", None, row["detail"], success=False, error=msg)
        ctx.emit(row["component"], "resume", step=row["step_id"], interrupted_at=where, previous_run=row["run_id"])


def _run(lock: Lock, steps: list[Step], ctx: Context, auto: bool = False) -> ApplyReport:
    chains = component_chains(lock)
    ctx.verify_url = postverify.prometheus_url(lock)
    runners = {s.id: StepRunner(ctx, s, lock.components[s.component], chains[s.component]) for s in lock.plan.steps}
    ctx.emit(
        None,
        "run_started",
        run_id=ctx.run_id,
        lock_sha256=lock.content_sha256,
        mode=ctx.mode,
        dry_run=ctx.dry_run,
        steps=[s.id for s in steps],
        platform=ctx.platform,
        auto=auto,
    )
    refused = refuse_unbound(steps, runners, chains, ctx)
    if not refused:
        host_settings.bind(steps, runners, ctx)
        drift.apply_policy(steps, runners, ctx, lock.host_policy.on_manual_change)
        soak.hold_unsoaked(steps, runners, ctx)
    pending = [] if refused or not auto else approval_gate(steps, runners, chains, ctx)
    selected = {s.id for s in steps}
    for phase in [] if refused else lock.plan.phases + sorted({s.phase for s in steps} - set(lock.plan.phases)):
        _run_phase(phase, [s for s in steps if s.phase == phase], runners, chains, selected, ctx)
    name_requirements({k: r.result for k, r in runners.items()}, {s.id: step_deps(s, chains) for s in steps})
    return _report(steps, runners, pending, ctx)


def _run_phase(
    phase: str,
    phase_steps: list[Step],
    runners: dict[str, StepRunner],
    chains: dict[str, list[Step]],
    selected: set[str],
    ctx: Context,
) -> None:
    """One doit run for the steps of `phase` not decided yet (pending, or done on the host)."""
    decided = {s.id for s in phase_steps if runners[s.id].result is not None}
    if len(decided) == len(phase_steps):
        return
    ctx.emit(None, "phase_started", phase=phase, steps=[s.id for s in phase_steps if s.id not in decided])
    in_phase = {p.id for p in phase_steps} - decided
    tasks, bridge_map = [], {}
    for s in phase_steps:
        if s.id in decided:
            continue
        runner = runners[s.id]
        deps = step_deps(s, chains)
        blocked = _blocked(deps, phase_steps, runners, selected)
        if blocked:
            runner.result = StepResult(s.id, s.component, "skipped", "requires_not_done", {"requires": blocked})
            runner.emit("step_skipped", reason="requires_not_done", requires=blocked)
            continue
        name = task_name(s.id)
        bridge_map[name] = runner
        tasks.append(
            {
                "name": name,
                "actions": runner.actions(),
                "uptodate": [runner.uptodate],
                "task_dep": [task_name(d) for d in sorted(deps) if d in in_phase],
                "doc": f"{s.component} {s.from_version} -> {s.to_version}",
                "verbosity": 2,
            }
        )
    if tasks:
        _run_doit(tasks, DoitBridge(bridge_map), ctx.mode)


def _run_doit(tasks: list[dict[str, Any]], bridge: DoitBridge, mode: str) -> None:
    clean_stale_doit_dirs()
    with tempfile.TemporaryDirectory(prefix=f"obsplan-doit-{os.getpid()}-") as tmp:
        args = ["run", "--continue"]
        if mode == "fast" and len(tasks) > 1:
            args += ["-n", str(min(len(tasks), 8)), "-P", "thread"]
        loader = PlanLoader(tasks, str(Path(tmp) / "doit-deps.json"), bridge)
        code = DoitMain(loader, config_filenames=()).run(args + [t["name"] for t in tasks])
    if bridge.errors or code == 3:
        raise ObsplanError(
            f"doit could not run the plan: {'; '.join(bridge.errors) or f'exit {code}'}",
            exit_code=EXIT_INTERNAL,
        )


def _report(steps: list[Step], runners: dict[str, StepRunner], pending: list[str], ctx: Context) -> ApplyReport:
    """The run's results and exit code, and its closing events."""
    report = ApplyReport(ctx.run_id, dry_run=ctx.dry_run)
    for s in steps:
        report.results.append(runners[s.id].result or StepResult(s.id, s.component, "skipped", "not_run"))
    if any(r.reason == "internal_error" for r in report.results):
        report.exit_code = EXIT_INTERNAL
    elif any(r.failed or (r.status == "skipped" and r.reason != drift.MANUAL_CHANGE) for r in report.results):
        report.exit_code = EXIT_FAILED  # pending approval and a manual change skipped by policy are not failures
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    held = held_back(report.results)
    if held:
        ctx.emit(None, "held_back", steps=held)
    if report.results and all(r.status == "up_to_date" for r in report.results):
        ctx.emit(None, "nothing_to_do", steps=len(report.results))
    if pending:
        ctx.emit(
            None,
            "approvals_pending",
            steps=pending,
            hint=f"review, then: obsplan approve STEP_ID --root {ctx.layout.root}; re-run apply --auto",
        )
    ctx.emit(None, "run_finished", run_id=ctx.run_id, exit_code=report.exit_code, counts=counts)
    return report


def _blocked(deps: set[str], phase_steps: list[Step], runners: dict[str, StepRunner], selected: set[str]) -> list[str]:
    """Required steps outside this phase's doit run that did not finish (failed earlier, or not done on the host)."""
    in_phase = {s.id for s in phase_steps}
    blocked = []
    for d in sorted(deps):
        dep = runners.get(d)
        if dep is None:
            continue
        if d in in_phase:  # a step of this phase skipped before doit runs: no task exists to depend on
            if dep.result is not None and dep.result.status in ("skipped", "pending"):
                blocked.append(d)
            continue
        if dep.result is not None:
            if dep.result.status not in ("ok", "up_to_date", "would_run"):
                blocked.append(d)
        elif d not in selected and not dep.uptodate():
            blocked.append(d)
    return blocked


def emit_result_event(reporter: Reporter, result: StepResult) -> None:
    reporter.emit(Event(result.component, "result", result.to_dict()))
