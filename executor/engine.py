"""Apply a lock with doit, and the read/rollback commands over the state DB.

Before any step runs, the facts the reviewed plan is bound to are re-checked and the whole run is refused,
naming the fact, when one changed: the lock's content hash and format version (`load_lock`), a bundle that
is not exactly this lock's (`--bundle`), a missing checksum for this host's platform (fail closed unless
`--allow-unverified`), a host that is not on the plan's path (it runs a version the plan never assumed).
With `--auto`, steps neither approved in the lock nor on this host (`obsplan approve`) are left pending.

Each selected plan step becomes one doit task (a custom `TaskLoader2`, no dodo.py) whose `uptodate` is a
host-facts check and whose actions are the journalled stages of `steps.StepRunner`. Phases run in the
plan's order, one doit run each; `requires` become `task_dep`. doit's own dependency file lives in a
temporary directory (it is flushed only at exit); crash safety comes from our journal + host facts.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.task import dict_to_task

from obsplan.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, ObsplanError
from obsplan.hostfacts import from_state_hint
from obsplan.lockfile import HostPolicy, Lock, Step, load_lock, write_atomic

from . import adopt, binding, drift, phases, soak
from . import bundle as bundles
from .artifacts import ArtifactSource, HttpSource, LocalDirSource, clean_stale_parts
from .extract import disk_full
from .facts import host_platform, pid_alive
from .integrity import install_problems
from .layout import Layout
from .metrics import write_metrics
from .report import AuditLog, Event, Fanout, Reporter, now_iso
from .services import ServiceManager, make_service_manager
from .state import StateDB
from .steps import HEALTH_WINDOW, Context, StepResult, StepRunner, restore_point, version_below

APPLIED_LOCK = "applied-lock.json"


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


@contextmanager
def apply_lock(layout: Layout, command: str) -> Iterator[None]:
    """Kernel-held lock on `<root>/var/lib/obsplan/apply.lock`; the holder's pid and start time go to a side file."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(layout)
            raise ObsplanError(
                f"another obsplan {holder.get('command', 'apply')} holds {layout.lock_path}: "
                f"pid {holder.get('pid', '?')} started at {holder.get('started_at', '?')}",
                hint="wait for it to finish; the lock is released by the kernel when that process exits",
                exit_code=EXIT_FAILED,
            ) from None
        write_atomic(
            layout.lock_info_path, json.dumps({"pid": os.getpid(), "started_at": now_iso(), "command": command}) + "\n"
        )
        try:
            yield
        finally:
            layout.lock_info_path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(layout: Layout) -> dict[str, Any]:
    try:
        info = json.loads(layout.lock_info_path.read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(info, dict) and isinstance(info.get("pid"), int) and not pid_alive(info["pid"]):
        info["pid"] = f"{info['pid']} (exited?)"
    return info if isinstance(info, dict) else {}


# --------------------------------------------------------------------------------------------------------
# doit glue


class _PlanLoader(TaskLoader2):
    """Hands doit the tasks compiled from the lock (API 2 loader, no dodo.py)."""

    def __init__(self, tasks: list[dict[str, Any]], dep_file: str, reporter: Any) -> None:
        super().__init__()
        self.tasks, self.dep_file, self.reporter = tasks, dep_file, reporter

    def setup(self, opt_values: Any) -> None:
        return None

    def load_doit_config(self) -> dict[str, Any]:
        return {"dep_file": self.dep_file, "backend": "json", "verbosity": 2, "reporter": self.reporter}

    def load_tasks(self, cmd: Any, pos_args: Any) -> list[Any]:
        return [dict_to_task(dict(t)) for t in self.tasks]


class _DoitBridge:
    """A doit reporter instance: forwards doit's view (up to date, failure) into our results/events."""

    def __init__(self, runners: dict[str, StepRunner]) -> None:
        self.runners = runners
        self.errors: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None: ...
    def get_status(self, task: Any) -> None: ...
    def execute_task(self, task: Any) -> None: ...
    def add_success(self, task: Any) -> None: ...
    def skip_uptodate(self, task: Any) -> None: ...
    def skip_ignore(self, task: Any) -> None: ...
    def teardown_task(self, task: Any) -> None: ...
    def complete_run(self) -> None: ...

    def add_failure(self, task: Any, fail: Any) -> None:
        runner = self.runners.get(task.name)
        if runner is None or runner.result is not None:
            return
        text = fail.get_msg() if hasattr(fail, "get_msg") else str(fail)
        if type(fail).__name__ == "UnmetDependency":
            runner.result = StepResult(runner.step.id, runner.c, "skipped", "dependency_failed", {"error": text})
            runner.emit("step_skipped", reason="dependency_failed")
        else:
            runner.result = StepResult(runner.step.id, runner.c, "failed", "internal_error", {"error": text})
            runner.emit("step_failed", reason="internal_error", error=text[-2000:])

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(str(exception))

    def runtime_error(self, msg: str) -> None:
        self.errors.append(msg)


def _task_name(step_id: str) -> str:
    return "step_" + re.sub(r"[^A-Za-z0-9_.-]", "_", step_id)


def component_chains(lock: Lock) -> dict[str, list[Step]]:
    """Steps of each component ordered along the version chain (from → to), plan order breaking ties."""
    chains: dict[str, list[Step]] = {}
    for s in lock.plan.steps:
        chains.setdefault(s.component, []).append(s)
    for c, steps in chains.items():
        ordered: list[Step] = []
        remaining = list(steps)
        tos = {s.to_version for s in steps}
        heads = [s for s in remaining if s.from_version not in tos] or remaining[:1]
        cur: Step | None = heads[0]
        while cur is not None:
            ordered.append(cur)
            remaining.remove(cur)
            cur = next((s for s in remaining if s.from_version == ordered[-1].to_version), None)
        chains[c] = ordered + remaining
    return chains


def _make_context(
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
    lock = bundles.load_reviewed_lock(lock_path)
    options = with_host_policy(options, lock)
    if not lock.host_policy.require_checksum_verification:  # the policy said so: like --allow-unverified, loudly
        options = replace(options, allow_unverified=True)
    layout = Layout(options.root.resolve())
    platform = host_platform()
    if lock.platforms and platform not in lock.platforms:
        raise ObsplanError(
            f"the lock has no artifacts for this host's platform {platform}",
            file=str(lock_path),
            key="platforms",
            hint=f"re-run 'obsplan plan' with {platform} in platforms",
        )
    steps = [
        s
        for s in lock.plan.steps
        if (options.phase is None or s.phase == options.phase)
        and (options.component is None or s.component == options.component)
    ]
    if options.phase is not None and options.phase not in lock.plan.phases:
        raise ObsplanError(f"no phase {options.phase!r} in the lock", key="--phase", hint=", ".join(lock.plan.phases))
    if options.component is not None and options.component not in lock.components:
        raise ObsplanError(
            f"no component {options.component!r} in the lock",
            key="--component",
            hint=", ".join(sorted(lock.components)),
        )
    if options.phase is not None:
        _refuse_unfinished_phases(lock, options.phase, layout, lock_path)
    services = services or make_service_manager(options.service_manager, layout)
    own_client = client is None
    client = client or httpx.Client(timeout=10.0, trust_env=False)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        with contextlib.ExitStack() as stack:
            source: ArtifactSource | None = None
            if options.bundle is not None:  # refused here, before the apply lock: nothing under --root changes
                directory = stack.enter_context(bundles.opened(options.bundle))
                bundles.check_for_apply(directory, lock_path, platform)
                source = bundles.BundleSource(directory)
            if options.dry_run:
                db = StateDB.open_for_reading(layout.db_path)
                try:
                    ctx = _make_context(
                        layout, options, reporter, db, client, services, run_id, source, lock.host_policy
                    )
                    return _run(lock, steps, ctx, options.auto)
                finally:
                    if db is not None:
                        db.close()
            with apply_lock(layout, "apply"):
                db = StateDB(layout.db_path)  # first: a broken database stops here, before anything is opened
                audit = AuditLog(layout.audit_path)
                fan = Fanout(reporter, audit)
                try:
                    bundles.write_bytes_atomic(layout.state_dir / APPLIED_LOCK, lock_path.read_bytes())  # exact copy
                    db.start_run(run_id, "apply", lock.content_sha256, options.mode)
                    ctx = _make_context(layout, options, fan, db, client, services, run_id, source, lock.host_policy)
                    _note_interrupted(ctx)
                    stale = clean_stale_parts(layout.downloads)
                    if stale:
                        ctx.emit(None, "stale_downloads_removed", files=stale)
                    report = _run(lock, steps, ctx, options.auto)
                    db.finish_run(run_id, "ok" if report.exit_code == EXIT_OK else f"exit {report.exit_code}")
                    write_metrics(db, layout.metrics_path)
                    return report
                finally:
                    db.close()
                    audit.close()
    except (OSError, sqlite3.OperationalError) as exc:  # the state, audit log or metrics on a full disk
        full = disk_full(exc, "writing obsplan's state")
        if full is None:
            raise
        full.message = f"{full.reason}: {full.message}"  # no step result carries the reason here
        raise full from None
    finally:
        if own_client:
            client.close()


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
        ctx.db.add_history(
            run_id=row["run_id"],
            component=row["component"],
            step_id=row["step_id"],
            kind="interrupted",
            from_version=None,
            to_version=row["detail"],
            success=False,
            started_at=row["at"],
            error=msg,
        )
        ctx.emit(row["component"], "resume", step=row["step_id"], interrupted_at=where, previous_run=row["run_id"])


def _run(lock: Lock, steps: list[Step], ctx: Context, auto: bool = False) -> ApplyReport:
    report = ApplyReport(ctx.run_id, dry_run=ctx.dry_run)
    chains = component_chains(lock)
    runners = {s.id: StepRunner(ctx, s, lock.components[s.component], chains[s.component]) for s in lock.plan.steps}
    selected = {s.id for s in steps}
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
    for phase in [] if refused else lock.plan.phases + sorted({s.phase for s in steps} - set(lock.plan.phases)):
        phase_steps = [s for s in steps if s.phase == phase]
        decided = {s.id for s in phase_steps if runners[s.id].result is not None}  # pending, or done on the host
        if len(decided) == len(phase_steps):
            continue
        ctx.emit(None, "phase_started", phase=phase, steps=[s.id for s in phase_steps if s.id not in decided])
        tasks, bridge_map = [], {}
        for s in phase_steps:
            if s.id in decided:
                continue
            runner = runners[s.id]
            deps = set(s.requires)
            chain = chains[s.component]
            idx = chain.index(s)
            if idx > 0:
                deps.add(chain[idx - 1].id)
            blocked = _blocked(deps, phase_steps, runners, selected)
            if blocked:
                runner.result = StepResult(s.id, s.component, "skipped", "requires_not_done", {"requires": blocked})
                runner.emit("step_skipped", reason="requires_not_done", requires=blocked)
                continue
            name = _task_name(s.id)
            bridge_map[name] = runner
            in_phase = {p.id for p in phase_steps} - decided
            tasks.append(
                {
                    "name": name,
                    "actions": runner.actions(),
                    "uptodate": [runner.uptodate],
                    "task_dep": [_task_name(d) for d in sorted(deps) if d in in_phase],
                    "doc": f"{s.component} {s.from_version} -> {s.to_version}",
                    "verbosity": 2,
                }
            )
        if tasks:
            bridge = _DoitBridge(bridge_map)
            _clean_stale_doit_dirs()
            with tempfile.TemporaryDirectory(prefix=f"obsplan-doit-{os.getpid()}-") as tmp:
                args = ["run", "--continue"]
                if ctx.mode == "fast" and len(tasks) > 1:
                    args += ["-n", str(min(len(tasks), 8)), "-P", "thread"]
                loader = _PlanLoader(tasks, str(Path(tmp) / "doit-deps.json"), bridge)
                code = DoitMain(loader, config_filenames=()).run(args + [t["name"] for t in tasks])
            if bridge.errors or code == 3:
                raise ObsplanError(
                    f"doit could not run the plan: {'; '.join(bridge.errors) or f'exit {code}'}",
                    exit_code=EXIT_INTERNAL,
                )
    for s in steps:
        r = runners[s.id].result or StepResult(s.id, s.component, "skipped", "not_run")
        report.results.append(r)
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


def plan_path(chain: list[Step]) -> list[str | None]:
    """The versions a component goes through in the plan: the assumed from-state, then every step's target."""
    return [chain[0].from_version] + [s.to_version for s in chain] if chain else []


def _refuse_unbound(
    steps: list[Step], runners: dict[str, StepRunner], chains: dict[str, list[Step]], ctx: Context
) -> bool:
    """Re-check the facts the reviewed plan is bound to before any step runs; on any mismatch refuse the whole
    run (nothing under --root changes but obsplan's own state and logs) and say which fact changed."""
    refused = False
    for s in steps:  # 1. a checksum for this host's platform (fail closed, like aqua's require_checksum)
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
    if not ctx.force:  # 2. the host is on the plan's path: the assumed from-state or a version the plan reaches
        for c in sorted({s.component for s in steps}):
            chain = chains[c]
            path = plan_path(chain)
            ids = {s.id for s in steps}
            first = next(s for s in chain if s.id in ids)
            runner = runners[first.id]
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
    if refused:
        why = sorted(r.result.step_id for r in runners.values() if r.result is not None and r.result.failed)
        for s in steps:
            if runners[s.id].result is None:
                runners[s.id].result = StepResult(s.id, s.component, "skipped", "plan_refused", {"because": why})
                runners[s.id].emit("step_skipped", reason="plan_refused", because=why)
        ctx.emit(None, "plan_refused", because=why)
    return refused


def step_digest(step: Step) -> str:
    """What an approval on this host covers: every field of the step but the lock's own approval."""
    data = step.model_dump(mode="json", exclude={"approval"})
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _host_approval(db: StateDB | None, step: Step) -> Any:
    return db.approval(step.id, step_digest(step)) if db is not None else None


def _gate(steps: list[Step], runners: dict[str, StepRunner], chains: dict[str, list[Step]], ctx: Context) -> list[str]:
    """`--auto`: leave pending every step not approved (in the lock or on this host), not already done on the
    host and not interrupted mid-way by an earlier run, and every step that requires one (transitively,
    `requires` and the component's chain)."""
    waiting: dict[str, list[str]] = {}
    for s in steps:
        if s.approval is not None or _host_approval(ctx.db, s) is not None:
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
            chain = chains[s.component]
            idx = chain.index(s)
            deps = set(s.requires) | ({chain[idx - 1].id} if idx > 0 else set())
            blocked = sorted(d for d in deps if d in waiting)
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


def _clean_stale_doit_dirs() -> None:
    """doit's throw-away dependency files of runs that were killed (their pid is gone)."""
    for stale in Path(tempfile.gettempdir()).glob("obsplan-doit-*-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


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


def last_applied_lock(root: Path) -> Path:
    """The copy of the lock the last apply under `root` used (for `obsplan resume` without LOCK)."""
    path = Layout(root.resolve()).state_dir / APPLIED_LOCK
    if not path.is_file():
        raise ObsplanError(
            f"nothing to resume under {root}: no applied lock at {path}",
            key="LOCK",
            hint="pass the lock file: obsplan resume LOCK",
        )
    return path


def _applied_lock(layout: Layout, lock_path: Path | None) -> Lock | None:
    path = lock_path or layout.state_dir / APPLIED_LOCK
    if lock_path is None and not path.exists():
        return None
    return load_lock(path)


def status(
    root: Path, lock_path: Path | None = None, services_kind: str = "auto", client: httpx.Client | None = None
) -> list[dict[str, Any]]:
    layout = Layout(root.resolve())
    lock = _applied_lock(layout, lock_path)
    db = StateDB.open_for_reading(layout.db_path)
    own = client is None
    client = client or httpx.Client(timeout=3.0, trust_env=False)
    try:
        rows = {r["component"]: r for r in db.all_installed()} if db else {}
        names = sorted(set(rows) | set(lock.components if lock else ()))
        pending = pending_approvals(lock, db, layout) if lock else {}
        services = make_service_manager(services_kind, layout)
        out = []
        for c in names:
            row = rows.get(c)
            entry: dict[str, Any] = {
                "component": c,
                "installed_version": row["version"] if row else None,
                "host_version": layout.current_version(c),
                "target_version": None,
                "floor": row["floor"] if row else None,
                "last_result": row["last_result"] if row else None,
                "last_step": row["last_step"] if row else None,
                "health": "unknown",
                "served_version": None,
                "pending_approval": pending.get(c, []),
            }
            if lock and c in lock.components:
                comp = lock.components[c]
                entry["target_version"] = comp.version
                chain = [s for s in lock.plan.steps if s.component == c]
                step = chain[-1] if chain else None
                if step is not None:
                    ctx = Context(
                        layout=layout,
                        db=None,
                        reporter=Fanout(),
                        services=services,
                        client=client,
                        source=HttpSource(client),
                        run_id="status",
                        platform=host_platform(),
                        dry_run=True,
                    )
                    runner = StepRunner(ctx, step, comp, chain)
                    served = runner.served_version()
                    entry["served_version"] = served
                    entry["health"] = "serving" if served else "down"
                entry["problems"] = install_problems(layout, c, comp.runtime, entry["host_version"])
                if entry["problems"]:
                    entry["health"] = "broken"
                entry["drift"] = drift.detect(c, comp.runtime, layout, entry["served_version"])
                if entry["drift"] and not entry["problems"]:
                    entry["health"] = "drift"  # changed by hand after obsplan installed it
                entry["up_to_date"] = (
                    entry["host_version"] == comp.version
                    and entry["served_version"] == comp.version
                    and not entry["problems"]
                )
            out.append(entry)
        return out
    finally:
        if db:
            db.close()
        if own:
            client.close()


def history(root: Path, component: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    layout = Layout(root.resolve())
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        return []
    with db:
        return [dict(r) for r in db.history(component, limit)]


def _who() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def approve(root: Path, step_id: str, lock_path: Path | None = None, by: str | None = None) -> dict[str, Any]:
    """Record on this host that `step_id` of the lock may run under `apply --auto` (who and when, in `approvals`).

    The approval covers exactly this step's content (its digest): a re-planned step with the same id but other
    versions or artifacts needs approving again."""
    layout = Layout(root.resolve())
    path = lock_path or layout.state_dir / APPLIED_LOCK
    if lock_path is None and not path.is_file():
        raise ObsplanError(
            f"no applied lock under {layout.root} to find {step_id!r} in",
            key="--lock",
            hint="pass the lock that holds the step: obsplan approve STEP_ID --lock LOCK",
        )
    lock = bundles.load_reviewed_lock(path)
    step = next((s for s in lock.plan.steps if s.id == step_id), None)
    if step is None:
        known = ", ".join(s.id for s in lock.plan.steps) or "none"
        raise ObsplanError(
            f"no step {step_id!r} in the lock", file=str(path), key="STEP_ID", hint=f"known step ids: {known}"
        )
    digest = step_digest(step)
    with StateDB(layout.db_path) as db:
        prior = db.approval(step.id, digest)
        if prior is None:
            db.approve(step.id, digest, lock.content_sha256, by or _who())
        row = db.approval(step.id, digest)
    assert row is not None
    info = {
        "step": step.id,
        "component": step.component,
        "from_version": step.from_version,
        "to_version": step.to_version,
        "risk": step.risk,
        "approved_by": row["approved_by"],
        "approved_at": row["approved_at"],
        "already_approved": prior is not None,
        "lock": str(path),
        "lock_approval": step.approval,
    }
    audit = AuditLog(layout.audit_path)
    try:
        audit.emit(Event(step.component, "approved", info))
    finally:
        audit.close()
    return info


def pending_approvals(lock: Lock, db: StateDB | None, layout: Layout) -> dict[str, list[dict[str, Any]]]:
    """Per component: steps `apply --auto` would leave pending (not approved anywhere, not reached by the host)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for c, chain in component_chains(lock).items():
        path = plan_path(chain)
        host = layout.current_version(c)
        reached = path.index(host) if host in path else -1
        for i, s in enumerate(chain):
            if i + 1 <= reached or s.approval is not None or _host_approval(db, s) is not None:
                continue
            out.setdefault(c, []).append(
                {
                    "step": s.id,
                    "from_version": s.from_version,
                    "to_version": s.to_version,
                    "risk": s.risk,
                    "priority": s.priority,
                }
            )
    return out


def rollback_list(root: Path, component: str) -> dict[str, Any]:
    layout = Layout(root.resolve())
    db = StateDB.open_for_reading(layout.db_path)
    if db is None:
        return {"component": component, "points": [], "versions": [], "current": None, "floor": None}
    with db:
        row = db.installed(component)
        floor = row["floor"] if row else None
        points = [
            dict(p.to_dict(), below_floor=bool(p.from_version and version_below(p.from_version, floor)))
            for p in db.points(component, ("available", "initial", "used"))
        ]
    cdir = layout.component_dir(component)
    versions = sorted(
        (d.name for d in cdir.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith("."))
        if cdir.is_dir()
        else []
    )
    return {
        "component": component,
        "current": layout.current_version(component),
        "floor": floor,
        "points": points,
        "versions": [{"version": v, "below_floor": version_below(v, floor)} for v in versions],
    }


def rollback(
    root: Path,
    component: str,
    to: str | None,
    reporter: Reporter,
    service_manager: str = "auto",
    mode: str = "standard",
    health_timeout: float | None = None,
    client: httpx.Client | None = None,
) -> StepResult:
    """Switch `component` back to a rollback point (`to` = point id or None for the newest) or an installed
    version; refuses targets below the component's floor. A failed rollback switches back again."""
    layout = Layout(root.resolve())
    lock = _applied_lock(layout, None)
    if lock is None or component not in lock.components:
        raise ObsplanError(
            f"no applied lock knows {component!r} under {layout.root}",
            hint="rollback works on components installed by 'obsplan apply'",
        )
    services = make_service_manager(service_manager, layout)
    own = client is None
    client = client or httpx.Client(timeout=10.0, trust_env=False)
    try:
        with apply_lock(layout, "rollback"):
            db = StateDB(layout.db_path)  # first: a broken database stops here, before anything is opened
            audit = AuditLog(layout.audit_path)
            run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
            try:
                db.start_run(run_id, f"rollback {component} {to or ''}".strip(), lock.content_sha256, mode)
                opts = with_host_policy(ApplyOptions(root=layout.root, mode=mode, health_timeout=health_timeout), lock)
                ctx = _make_context(layout, opts, Fanout(reporter, audit), db, client, services, run_id)
                result = _rollback(ctx, lock, component, to)
                db.finish_run(run_id, result.status)
                write_metrics(db, layout.metrics_path)
                return result
            finally:
                db.close()
                audit.close()
    finally:
        if own:
            client.close()


def _rollback(ctx: Context, lock: Lock, component: str, to: str | None) -> StepResult:
    assert ctx.db is not None
    db, layout = ctx.db, ctx.layout
    current = layout.current_version(component)
    row = db.installed(component)
    floor = row["floor"] if row else None
    point = None
    if to is None or to.isdigit() or to == adopt.ADOPTED:
        points = db.points(component, ("available",))
        if to == adopt.ADOPTED:
            points = [p for p in points if p.label == adopt.ADOPTED]
        point = db.point(int(to)) if to and to.isdigit() else (points[0] if points else None)
        if point is None or point.component != component:
            raise ObsplanError(
                f"no rollback point {to or ''} for {component}".replace("  ", " "),
                hint=f"see 'obsplan rollback {component} --list'",
            )
        if point.from_version is None:
            raise ObsplanError(f"rollback point {point.id} is the first install of {component}: nothing before it")
        target = point.from_version
    else:
        target = to.lstrip("v")
        points = [p for p in db.points(component, ("available",)) if p.from_version == target]
        point = points[0] if points else None
    if target == current:
        raise ObsplanError(f"{component} already runs {target}", exit_code=EXIT_USAGE)
    if version_below(target, floor):
        raise ObsplanError(
            f"refusing to roll {component} back to {target}: below its rollback floor {floor} "
            "(its data was written by a newer version that older ones cannot read)",
            hint=f"choose a version >= {floor} from 'obsplan rollback {component} --list'",
        )
    if not layout.version_dir(component, target).is_dir():
        raise ObsplanError(
            f"{component} {target} is not installed under {layout.component_dir(component)}",
            hint=f"see 'obsplan rollback {component} --list'",
        )
    comp = lock.components[component]
    fake = Step(
        id=f"rollback:{component}:{current}->{target}",
        component=component,
        from_version=current,
        to_version=target,
        phase="rollback",
        requires=[],
        risk="high",
        reasons=[],
        artifacts={},
    )
    runner = StepRunner(ctx, fake, comp, [fake])
    started, t0 = now_iso(), time.monotonic()
    ctx.emit(component, "rollback_started", from_version=current, to_version=target, point=point.id if point else None)
    db.journal(ctx.run_id, fake.id, component, "step", "start", target)
    try:
        if point is not None:
            restore_point(ctx, runner, point)
        else:
            old = ctx.services.status(component)
            runner.switch_to(target, runner.rendered(target))
            ctx.services.restart(component)
            runner.verify(target, old.pid if old.running else None)
    except Exception as exc:  # noqa: BLE001 - any failure after the switch must switch back
        error = str(exc)
        ctx.emit(component, "rollback_failed", error=error, switching_back_to=current)
        try:
            if current is not None:
                old = ctx.services.status(component)
                runner.switch_to(current, runner.rendered(current))
                ctx.services.restart(component)
                runner.verify(current, old.pid if old.running else None)
        except Exception as exc2:  # noqa: BLE001
            error += f"; switching back to {current} failed too: {exc2}"
        db.add_history(
            run_id=ctx.run_id,
            component=component,
            step_id=fake.id,
            kind="rollback",
            from_version=current,
            to_version=target,
            success=False,
            started_at=started,
            error=error,
            duration=time.monotonic() - t0,
        )
        db.journal(ctx.run_id, fake.id, component, "step", "failed", error[:2000])
        return StepResult(fake.id, component, "failed", getattr(exc, "reason", "rollback_failed"), {"error": error})
    with db.transaction():
        db.add_history(
            run_id=ctx.run_id,
            component=component,
            step_id=fake.id,
            kind="rollback",
            from_version=current,
            to_version=target,
            success=True,
            started_at=started,
            duration=time.monotonic() - t0,
        )
        if point is not None:
            db.set_point_status(point.id, "used")
        db.set_installed(component, target, previous=current, floor=floor, last_result="rolled_back", last_step=fake.id)
        db.journal(ctx.run_id, fake.id, component, "step", "done", target)
    ctx.emit(component, "rollback_done", from_version=current, to_version=target)
    return StepResult(fake.id, component, "ok", "rolled_back", {"from": current, "to": target})


def emit_result_event(reporter: Reporter, result: StepResult) -> None:
    reporter.emit(Event(result.component, "result", result.to_dict()))
