"""Apply a lock with doit (the read commands live in `queries`, rollback in `rollback`, approvals in `approvals`).

Before any step runs, the facts the reviewed plan is bound to are re-checked and the whole run is refused,
naming the fact, when one changed: the lock's content hash and format version (`load_lock`), a bundle that
is not exactly this lock's (`--bundle`), a missing checksum for this host's platform (fail closed unless
`--allow-unverified`), a host that is not on the plan's path (it runs a version the plan never assumed).
With `--auto`, steps neither approved in the lock nor on this host (`obsplan approve`) are left pending.

Each selected plan step becomes one doit task (a custom `TaskLoader2`, no dodo.py) whose `uptodate` is a
host-facts check and whose actions are the journalled stages of `steps.StepRunner` (`stages/`). Phases run in the
plan's order, one doit run each; `requires` become `task_dep`. doit's own dependency file lives in a
temporary directory (it is flushed only at exit); crash safety comes from our journal + host facts.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from doit.doit_cmd import DoitMain

from obsplan.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, ObsplanError
from obsplan.fsio import write_atomic
from obsplan.hostfacts import from_state_hint
from obsplan.lock_review import load_reviewed_lock
from obsplan.lockfile import HostPolicy, Lock, Step

from . import binding, drift, phases, soak
from .approvals import host_approval
from .artifacts import ArtifactSource, HttpSource, LocalDirSource, clean_stale_parts
from .bundle.source import BundleSource, check_for_apply
from .bundle.tarball import opened
from .context import HEALTH_WINDOW, Context
from .doit_bridge import DoitBridge, PlanLoader, clean_stale_doit_dirs, task_name
from .extract import disk_full
from .facts import host_platform
from .history import HistoryRecorder
from .hostrun import HostRun, host_run, http_client, new_run_id
from .layout import APPLIED_LOCK, Layout
from .plan_queries import component_chains, plan_path
from .report import Event, Reporter
from .results import StepResult
from .services import ServiceManager, make_service_manager
from .state import StateDB
from .steps import StepRunner


@dataclass
class ApplyOptions:
    root: Path = Path("/")
    mode: str = "standard"
    dry_run: bool = False
    phase: str | None = None
    component: str | None = None
    service_manager: str = "auto"
    force: bool = False
    artifacts_dir: Path | None = None
    health_timeout: float | None = None
    keep_versions: int | None = None  # None: the lock's host_policy.keep_versions
    keep_days: float | None = None  # None: the lock's host_policy.retention_days
    bundle: Path | None = None  # take every artifact from this bundle (directory or plain tar); no network
    auto: bool = False  # only steps approved in the lock or on this host; the rest stay pending
    allow_unverified: bool = False  # install artifacts the lock has no sha256 for (loud, recorded in history)


@dataclass
class ApplyReport:
    run_id: str
    results: list[StepResult] = field(default_factory=list)
    exit_code: int = EXIT_OK
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "exit_code": self.exit_code,
            "dry_run": self.dry_run,
            "results": [r.to_dict() for r in self.results],
        }


# --------------------------------------------------------------------------------------------------------
# one apply per root


# --------------------------------------------------------------------------------------------------------
# doit glue


def make_context(
    layout: Layout,
    options: ApplyOptions,
    reporter: Reporter,
    db: StateDB | None,
    client: httpx.Client,
    services: ServiceManager,
    run_id: str,
    source: ArtifactSource | None = None,
    policy: HostPolicy | None = None,
) -> Context:
    """`policy`: the lock's host_policy (archive limits, download deadline); the defaults without a lock."""
    policy = policy or HostPolicy()
    if source is None:
        deadline = policy.download_deadline_seconds
        source = LocalDirSource(options.artifacts_dir) if options.artifacts_dir else HttpSource(client, deadline)
    return Context(
        policy=policy,
        layout=layout,
        db=db,
        reporter=reporter,
        services=services,
        client=client,
        source=source,
        run_id=run_id,
        platform=host_platform(),
        mode=options.mode,
        dry_run=options.dry_run,
        force=options.force,
        health_timeout=options.health_timeout,
        keep_versions=options.keep_versions if options.keep_versions is not None else 3,
        keep_days=options.keep_days if options.keep_days is not None else 30.0,
        allow_unverified=options.allow_unverified,
    )


def with_host_policy(options: ApplyOptions, lock: Lock) -> ApplyOptions:
    """Retention comes from the lock (`host_policy`, from the reviewed policy); CLI flags override it."""
    policy = lock.host_policy
    return replace(
        options,
        keep_versions=options.keep_versions if options.keep_versions is not None else policy.keep_versions,
        keep_days=options.keep_days if options.keep_days is not None else float(policy.retention_days),
    )


def _check_options(options: ApplyOptions) -> None:
    if options.mode not in HEALTH_WINDOW:
        raise ObsplanError(f"unknown mode {options.mode!r}", key="--mode", hint="safe, standard or fast")
    if options.artifacts_dir is not None and not options.artifacts_dir.is_dir():
        raise ObsplanError(f"{options.artifacts_dir} is not a directory", key="--artifacts")
    if options.bundle is not None and options.artifacts_dir is not None:
        raise ObsplanError(
            "--bundle and --artifacts are exclusive",
            key="--bundle",
            hint="a bundle already holds every artifact of its lock",
        )


# --------------------------------------------------------------------------------------------------------
# apply


def apply(
    lock_path: Path,
    options: ApplyOptions,
    reporter: Reporter,
    client: httpx.Client | None = None,
    services: ServiceManager | None = None,
) -> ApplyReport:
    """Apply a lock; failures are values in the report. Raises ObsplanError for bad input (exit 2)."""
    _check_options(options)
    lock = load_reviewed_lock(lock_path)
    options = with_host_policy(options, lock)
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
                check_for_apply(directory, lock_path, platform)
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
                return _apply_run(run, ctx, lock, lock_path, steps, options.auto)
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
        raise ObsplanError(f"no phase {options.phase!r} in the lock", key="--phase", hint=", ".join(lock.plan.phases))
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


def _apply_run(run: HostRun, ctx: Context, lock: Lock, lock_path: Path, steps: list[Step], auto: bool) -> ApplyReport:
    write_atomic(ctx.layout.state_dir / APPLIED_LOCK, lock_path.read_bytes())  # exact copy
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
    refused = _refuse_unbound(steps, runners, chains, ctx)
    if not refused:
        drift.apply_policy(steps, runners, ctx, lock.host_policy.on_manual_change)
        soak.hold_unsoaked(steps, runners, ctx)
    pending = [] if refused or not auto else _gate(steps, runners, chains, ctx)
    selected = {s.id for s in steps}
    for phase in [] if refused else lock.plan.phases + sorted({s.phase for s in steps} - set(lock.plan.phases)):
        _run_phase(phase, [s for s in steps if s.phase == phase], runners, chains, selected, ctx)
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
        deps = _deps(s, chains)
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


def _deps(step: Step, chains: dict[str, list[Step]]) -> set[str]:
    """The steps `step` requires: its `requires` and the step before it in its component's chain."""
    chain = chains[step.component]
    idx = chain.index(step)
    return set(step.requires) | ({chain[idx - 1].id} if idx > 0 else set())


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


def _refuse_unbound(
    steps: list[Step], runners: dict[str, StepRunner], chains: dict[str, list[Step]], ctx: Context
) -> bool:
    """Re-check the facts the reviewed plan is bound to before any step runs; on any mismatch refuse the whole
    run (nothing under --root changes but obsplan's own state and logs) and say which fact changed."""
    refused = _refuse_unverifiable(steps, runners, ctx)
    if not ctx.force:
        refused = _refuse_off_path(steps, runners, chains, ctx) or refused
    if refused:
        why = sorted(r.result.step_id for r in runners.values() if r.result is not None and r.result.failed)
        for s in steps:
            if runners[s.id].result is None:
                runners[s.id].result = StepResult(s.id, s.component, "skipped", "plan_refused", {"because": why})
                runners[s.id].emit("step_skipped", reason="plan_refused", because=why)
        ctx.emit(None, "plan_refused", because=why)
    return refused


def _refuse_unverifiable(steps: list[Step], runners: dict[str, StepRunner], ctx: Context) -> bool:
    """1. a checksum for this host's platform (fail closed, like aqua's require_checksum)."""
    refused = False
    for s in steps:
        a = s.artifacts.get(ctx.platform)
        runner = runners[s.id]
        if a is None:
            runner.fail(
                "no_artifact_for_platform",
                f"the lock has no {ctx.platform} artifact for step {s.id} "
                f"(it has {', '.join(sorted(s.artifacts)) or 'none'}); nothing was changed",
            )
            refused = True
        elif not a.sha256 and ctx.allow_unverified:
            ctx.emit(
                s.component,
                "warning",
                code="unverified_artifact",
                step=s.id,
                file=a.filename,
                message=f"UNVERIFIED: {a.filename} has no sha256 in the lock and will be installed without "
                "checksum verification (--allow-unverified); recorded in the history",
            )
        elif not a.sha256:
            runner.fail(
                "missing_sha256",
                f"refusing {a.filename}: the lock has no sha256 for it on {ctx.platform} "
                f"(checksum_status={a.checksum_status}); nothing was changed. Re-run 'obsplan plan' when the "
                "upstream checksum can be fetched, or pass --allow-unverified (recorded in the history)",
            )
            refused = True
    return refused


def _refuse_off_path(
    steps: list[Step], runners: dict[str, StepRunner], chains: dict[str, list[Step]], ctx: Context
) -> bool:
    """2. the host is on the plan's path: the assumed from-state or a version the plan reaches."""
    refused = False
    ids = {s.id for s in steps}
    for c in sorted({s.component for s in steps}):
        chain = chains[c]
        path = plan_path(chain)
        runner = runners[next(s for s in chain if s.id in ids).id]
        if runner.result is not None:
            continue
        host, how = runner.host_version()
        if host in path or binding.accept_drift(chain, ids, host, how, runners, ctx):
            continue
        runner.record_host(host, how)
        assumed = chain[0].from_version
        steps_text = " → ".join(v or "nothing" for v in path)
        runner.fail(
            "off_plan_path",
            f"host runs {c} {host or 'nothing'} ({how}), but the plan assumed {assumed or 'nothing installed'} "
            f"(plan: {c} {steps_text}); nothing was changed. Re-run 'obsplan plan' against the host "
            f"(obsplan facts -o host.json && obsplan plan --facts host.json, or in versions.yaml: "
            f"{from_state_hint(c, host)}) and review the new lock, or pass --force to apply this "
            "step anyway",
            host_version=host,
            expected=assumed,
            plan_path=path,
        )
        refused = True
    return refused


def _gate(steps: list[Step], runners: dict[str, StepRunner], chains: dict[str, list[Step]], ctx: Context) -> list[str]:
    """`--auto`: leave pending every step not approved (in the lock or on this host), not already done on the
    host and not interrupted mid-way by an earlier run, and every step that requires one (transitively,
    `requires` and the component's chain)."""
    waiting: dict[str, list[str]] = {}
    for s in steps:
        if s.approval is not None or host_approval(ctx.db, s) is not None:
            continue
        if ctx.db is not None and ctx.db.step_unfinished(s.id):
            continue  # started by an earlier run that was interrupted: finishing it is safer than leaving it half done
        if not runners[s.id].uptodate():
            waiting[s.id] = []
    changed = True
    while changed:
        changed = False
        for s in steps:
            if s.id in waiting or runners[s.id].result is not None:
                continue
            blocked = sorted(d for d in _deps(s, chains) if d in waiting)
            if blocked and not runners[s.id].uptodate():
                waiting[s.id] = blocked
                changed = True
    for s in steps:
        if s.id not in waiting:
            continue
        reason = "requires_pending_approval" if waiting[s.id] else "pending_approval"
        runners[s.id].result = StepResult(s.id, s.component, "pending", reason, {"waiting_for": waiting[s.id]})
        runners[s.id].emit(
            "pending_approval",
            reason=reason,
            waiting_for=waiting[s.id],
            risk=s.risk,
            from_version=s.from_version,
            to_version=s.to_version,
        )
    return [s.id for s in steps if s.id in waiting]


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


# --------------------------------------------------------------------------------------------------------
# status, history, rollback


def emit_result_event(reporter: Reporter, result: StepResult) -> None:
    reporter.emit(Event(result.component, "result", result.to_dict()))
