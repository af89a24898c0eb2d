"""Stage 3b, pre-switch check: the target release's own checker judges the configuration the service runs
with (`executor/checks/config_verdict.py`). A refusal fails the step before the checkpoint and the switch: the running
version keeps running, untouched. `--dry-run` runs the same check on a scratch extraction and reports it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import obsplan.executor.artifacts.store as art
from obsplan.executor.checks.config_verdict import Verdict, check_release
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import PrecheckResult, StepFailed

from obsplan.lock.lockfile import Artifact


def run(facts: StepFacts, journal: StepJournal, artifact: Artifact) -> PrecheckResult:
    """Judge the configuration with the target release (`artifact`: the fetched one, for a dry run's scratch)."""
    if facts.ctx.dry_run:
        return PrecheckResult(_dry_run(facts, artifact))
    with journal.stage("precheck"):
        release = facts.ctx.layout.version_dir(facts.c, facts.step.to_version)
        return PrecheckResult(judge(facts, _check(facts, release)))


def _check(facts: StepFacts, release: Path) -> Verdict | None:
    return check_release(facts.c, facts.runtime, facts.step.to_version, release, facts.ctx.layout)


def judge(facts: StepFacts, verdict: Verdict | None) -> Verdict | None:
    """Report the verdict; a refusal fails the step with the checker's own complaint."""
    if verdict is None:
        return None
    facts.emit("config_checked", **verdict.to_dict())
    if not verdict.refused:
        return verdict
    running = facts.ctx.layout.current_version(facts.c)
    raise StepFailed(
        "config_refused",
        f"{verdict.tool} {verdict.version} refuses the configuration: {verdict.complaint()}. Nothing was switched"
        f"{f'; {facts.c} {running} keeps running' if running else ''}. Make {verdict.config} valid for "
        f"{verdict.version} and re-run",
        config=verdict.config,
        tool=verdict.tool,
        checker_output=verdict.output,
    )


def _dry_run(facts: StepFacts, a: Artifact) -> Verdict | None:
    """The same check, against the target release: its installed directory, else a scratch extraction of the
    verified archive (cached, or fetched into the scratch directory), discarded afterwards."""
    ctx, rt, version = facts.ctx, facts.runtime, facts.step.to_version
    release = ctx.layout.version_dir(facts.c, version)
    if release.is_dir():
        return judge(facts, _check(facts, release))
    if rt.service.for_version(version).check is None or not _has_config(facts) or not a.sha256:
        return None
    with tempfile.TemporaryDirectory(prefix="obsplan-check-") as scratch:
        cached = ctx.layout.downloads / a.filename
        if cached.is_file() and art.sha256_file(cached) == a.sha256:
            archive = cached
        else:
            archive, _ = art.ensure_download(
                a, Path(scratch), ctx.source, lambda total: ctx.reporter.progress(facts.c, a.filename, total)
            )
        parent = Path(scratch) / "release"
        art.ensure_extracted(archive, a, parent, version, rt.service_binary, ctx.policy.archive_limits)
        return judge(facts, _check(facts, parent / version))


def _has_config(facts: StepFacts) -> bool:
    rt = facts.runtime
    return rt.config_file is not None and facts.ctx.layout.host(rt.config_file).is_file()
