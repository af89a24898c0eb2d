"""Before any step runs, the facts the reviewed plan is bound to are re-checked; on a mismatch the whole run is
refused, naming the fact: a checksum for this host's platform (fail closed unless `--allow-unverified`), and a
host on the plan's path (the assumed from-state, or a version the plan reaches; `--force` skips this check)."""

from __future__ import annotations

import obsplan.executor.apply.binding as binding
from obsplan.executor.apply.plan_queries import plan_path
from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_results import StepResult
from obsplan.executor.stages.step_runner import StepRunner

from obsplan.lock.hostfacts import from_state_hint
from obsplan.lock.lockfile import Step


def refuse_unbound(
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
        host, how = runner.facts.host_version()
        if host in path or binding.accept_drift(chain, ids, host, how, runners, ctx):
            continue
        runner.facts.record_host(host, how)
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
