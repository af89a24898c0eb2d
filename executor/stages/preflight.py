"""Stage 1, pre-flight: before anything changes, the step can run here (artifact and checksum for this
platform, service manager reachable, service renderable, disk space) and the host is where the step starts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from obsplan.executor.host.probes import free_bytes
from obsplan.executor.reporters import now_iso
from obsplan.executor.stages.step_results import StepFailed

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Artifact

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner

MIN_FREE = 64 * 1024 * 1024


def run(r: StepRunner) -> None:
    r.started_at, r.t0 = now_iso(), time.monotonic()
    r.journal.record("step", "start", r.step.to_version)
    r.emit("step_started", from_version=r.step.from_version, to_version=r.step.to_version, dry_run=r.ctx.dry_run)
    with r.stage("preflight"):
        a = _artifact(r)
        ok, why = r.ctx.services.reachable()
        if not ok:
            raise StepFailed("service_manager_unreachable", why)
        try:  # renders (secrets readable) and its files' owner exists: nothing fails after the switch for it
            r.rendered(r.step.to_version)
            r.files_current(r.step.to_version)
        except ObsplanError as exc:
            raise StepFailed("service_definition", f"cannot render the {r.c} service: {exc}") from None
        _check_disk(r, a)
        host, how = r.host_version()
        pending = r.ctx.db.pending_point(r.step.id) if r.ctx.db is not None else None
        r.point = pending
        r.record_host(host, how)
        _check_start(r, host, how)
        r.emit(
            "preflight_ok",
            host_version=host,
            sha256=a.sha256 or "UNVERIFIED",
            service_manager=r.ctx.services.name,
            resume=pending.id if pending else None,
        )


def _artifact(r: StepRunner) -> Artifact:
    a = r.artifact
    if a is None:
        raise StepFailed(
            "no_artifact_for_platform",
            f"the lock has no artifact for {r.ctx.platform}",
            platforms=sorted(r.step.artifacts),
        )
    if not a.sha256 and not r.ctx.allow_unverified:
        raise StepFailed(
            "missing_sha256",
            f"refusing {a.filename}: the lock has no sha256 for it (checksum_status={a.checksum_status})",
        )
    return a


def _check_disk(r: StepRunner, a: Artifact) -> None:
    free = free_bytes(r.ctx.layout.root)
    cached = r.ctx.layout.downloads / a.filename
    need = max(MIN_FREE, 3 * cached.stat().st_size) if cached.is_file() else MIN_FREE
    if free < need:
        raise StepFailed("disk_full", f"{free} bytes free under {r.ctx.layout.root}, need {need}")


def _check_start(r: StepRunner, host: str | None, how: str) -> None:
    """The host runs a version this step may start from (else refused, unless --force)."""
    if host in _expected(r):
        return
    if r.ctx.force:
        r.emit("off_plan_path_forced", host_version=host, expected=r.step.from_version)
        return
    raise StepFailed(
        "off_plan_path",
        f"host runs {r.c} {host or 'nothing'} ({how}); this step expects "
        f"{r.step.from_version or 'nothing installed'} → {r.step.to_version}. "
        "Re-run 'obsplan plan' against the host's version, or pass --force to apply this step anyway",
        host_version=host,
        expected=r.step.from_version,
    )


def _expected(r: StepRunner) -> set[str | None]:
    expected = {r.step.from_version, r.step.to_version}
    if r.ctx.dry_run:  # earlier steps of the chain only "would run": the host may still be before them
        idx = r.chain.index(r.step) if r.step in r.chain else 0
        expected |= {r.chain[0].from_version, *(s.to_version for s in r.chain[:idx])}
    if r.c in r.ctx.accepted_from:  # off the plan's path, but the matrix allows this start
        expected.add(r.ctx.accepted_from[r.c])
    return expected
