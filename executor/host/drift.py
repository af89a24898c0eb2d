"""A component changed by hand after obsplan installed it (seed 003: "manually upgraded, skipping").

Drift: obsplan manages the component (its `current` link exists) but the exposed binary is no longer
obsplan's link into `/opt/obsplan/<component>/` (`obsplan status` also reports a service serving another
version than `current`). A component with a step left unfinished by a killed run is being resumed, not drifted.
A hand-placed version the lock's path allows is accepted (`on_path`); for any other,
`lock.host_policy.on_manual_change` decides what apply does: `skip` (default; the component's steps are
skipped with a warning, not a failure) or `reinstall` (the hand-placed binary is kept in the backups and the
steps run, putting obsplan's version back)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Literal

import obsplan.executor.host.on_path as on_path
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import probe_binary_version
from obsplan.executor.reporters import now_iso
from obsplan.executor.stages.step_results import StepResult

from obsplan.lock.lockfile import Runtime, Step

if TYPE_CHECKING:
    from obsplan.executor.stages.step_context import Context
    from obsplan.executor.stages.step_runner import StepRunner

MANUAL_CHANGE = "manual_change"


def detect(component: str, runtime: Runtime, layout: Layout, served: str | None = None) -> str | None:
    """What was changed by hand, or None (also None for a component obsplan does not manage)."""
    link = layout.current_version(component)
    if link is None:
        return None
    exposed = layout.bin_dir / runtime.service_binary
    if exposed.exists() or exposed.is_symlink():
        owned = exposed.is_symlink() and exposed.resolve().is_relative_to(layout.component_dir(component).resolve())
        if not owned:
            found = probe_binary_version(exposed, runtime.version_args) if exposed.exists() else None
            return f"{exposed} was replaced by hand (reports {found or 'no version'}; obsplan installed {link})"
    if served is not None and served != link:
        return f"the service serves {served}, but obsplan's current link is {link}"
    return None


def apply_policy(
    steps: list[Step], runners: dict[str, StepRunner], ctx: Context, policy: Literal["skip", "reinstall"]
) -> None:
    """Before any step runs: apply `on_manual_change` to every drifted component of the run."""
    for c in sorted({s.component for s in steps}):
        mine = [s for s in steps if s.component == c and runners[s.id].result is None]
        if not mine:
            continue
        if ctx.db is not None and any(ctx.db.step_unfinished(s.id) for s in mine):
            continue  # a run died mid-step (e.g. switched, not restarted): resuming it is not a manual change
        runner = runners[mine[0].id]
        what = detect(c, runner.facts.runtime, ctx.layout)  # what serves is verified by the step itself
        if what is None or on_path.accept_on_path(runner, mine, runners):
            continue
        ctx.emit(c, "warning", code=MANUAL_CHANGE, policy=policy, message=f"{c}: {what}; on_manual_change: {policy}")
        if policy == "reinstall":
            _keep_manual_binary(ctx, runner)
            continue
        for s in mine:
            runners[s.id].result = _skipped(s, what)
            runners[s.id].emit("step_skipped", reason=MANUAL_CHANGE, detail=what)


def _skipped(step: Step, what: str) -> StepResult:
    return StepResult(step.id, step.component, "skipped", MANUAL_CHANGE, {"drift": what, "policy": "skip"})


def _keep_manual_binary(ctx: Context, runner: StepRunner) -> None:
    """`reinstall` replaces a hand-placed binary: keep a copy in the backups first."""
    exposed = ctx.layout.bin_dir / runner.facts.runtime.service_binary
    if ctx.dry_run or not exposed.is_file() or exposed.is_symlink():
        return
    stamp = now_iso().replace(":", "").replace("+0000", "Z")
    dest = ctx.layout.backup_dir(runner.c, f"{stamp}-{MANUAL_CHANGE}")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(exposed, dest / runner.facts.runtime.service_binary)
    ctx.emit(runner.c, "manual_binary_kept", backup=str(dest / runner.facts.runtime.service_binary))
