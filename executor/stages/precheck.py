"""Stage 3b, pre-switch check: the target release's own checker judges the configuration the service runs
with (`executor/checks/config_verdict.py`). A refusal fails the step before the checkpoint and the switch: the running
version keeps running, untouched. `--dry-run` runs the same check on a scratch extraction and reports it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import obsplan.executor.artifacts.store as art
from obsplan.executor.checks.config_verdict import Verdict, check_release
from obsplan.executor.stages.step_results import StepFailed

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def run(r: StepRunner) -> None:
    if r.ctx.dry_run:
        _dry_run(r)
        return
    with r.stage("precheck"):
        release = r.ctx.layout.version_dir(r.c, r.step.to_version)
        judge(r, check_release(r.c, r.runtime, r.step.to_version, release, r.ctx.layout))


def judge(r: StepRunner, verdict: Verdict | None) -> None:
    """Report the verdict; a refusal fails the step with the checker's own complaint."""
    if verdict is None:
        return
    r.emit("config_checked", **verdict.to_dict())
    if not verdict.refused:
        return
    running = r.ctx.layout.current_version(r.c)
    raise StepFailed(
        "config_refused",
        f"{verdict.tool} {verdict.version} refuses the configuration: {verdict.complaint()}. Nothing was switched"
        f"{f'; {r.c} {running} keeps running' if running else ''}. Make {verdict.config} valid for "
        f"{verdict.version} and re-run",
        config=verdict.config,
        tool=verdict.tool,
        checker_output=verdict.output,
    )


def _dry_run(r: StepRunner) -> None:
    """The same check, against the target release: its installed directory, else a scratch extraction of the
    verified archive (cached, or fetched into the scratch directory), discarded afterwards."""
    release = r.ctx.layout.version_dir(r.c, r.step.to_version)
    if release.is_dir():
        judge(r, check_release(r.c, r.runtime, r.step.to_version, release, r.ctx.layout))
        return
    if r.runtime.service.for_version(r.step.to_version).check is None or not _has_config(r):
        return
    a = r.artifact
    if a is None or not a.sha256:
        return
    with tempfile.TemporaryDirectory(prefix="obsplan-check-") as scratch:
        cached = r.ctx.layout.downloads / a.filename
        if cached.is_file() and art.sha256_file(cached) == a.sha256:
            archive = cached
        else:
            archive, _ = art.ensure_download(
                a, Path(scratch), r.ctx.source, lambda total: r.ctx.reporter.progress(r.c, a.filename, total)
            )
        parent = Path(scratch) / "release"
        art.ensure_extracted(
            archive, a, parent, r.step.to_version, r.runtime.service_binary, r.ctx.policy.archive_limits
        )
        judge(r, check_release(r.c, r.runtime, r.step.to_version, parent / r.step.to_version, r.ctx.layout))


def _has_config(r: StepRunner) -> bool:
    return r.runtime.config_file is not None and r.ctx.layout.host(r.runtime.config_file).is_file()
