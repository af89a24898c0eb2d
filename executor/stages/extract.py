"""Stage 3, extract: the archive unpacked into the version's directory, its service binary present and
reporting the locked version (nothing is switched otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import obsplan.executor.artifacts.store as art
from obsplan.executor.host.probes import free_bytes
from obsplan.executor.stages.step_results import StepFailed

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def run(r: StepRunner) -> None:
    a = r.artifact
    assert a is not None
    target = r.ctx.layout.version_dir(r.c, r.step.to_version)
    if r.ctx.dry_run:
        r.emit("would_extract", to=str(target), exists=target.is_dir())
        return
    with r.stage("extract"):
        assert r.archive is not None
        free = free_bytes(target.parent)
        if not target.is_dir() and free < 3 * r.archive.stat().st_size:
            raise StepFailed("disk_full", f"{free} bytes free, need {3 * r.archive.stat().st_size}")
        limits = r.ctx.policy.archive_limits
        extracted = art.ensure_extracted(
            r.archive, a, target.parent, r.step.to_version, r.runtime.service_binary, limits
        )
        missing = [n for n, g in r.runtime.binaries.items() if art.find_binary(target, g) is None]
        if r.runtime.service_binary in missing:
            raise StepFailed(
                "binary_missing",
                f"{a.filename} has no {r.runtime.service_binary} "
                f"(glob {r.runtime.binaries.get(r.runtime.service_binary)})",
            )
        reported = _check_version(r, target)
        r.emit(
            "extracted" if extracted else "extract_cached",
            dir=str(target),
            binary_version=reported,
            missing_optional=missing,
        )


def _check_version(r: StepRunner, target: Path) -> str | None:
    """The version the extracted service binary reports (None: it reports none); refused when not the lock's."""
    binary = art.find_binary(target, r.runtime.binaries[r.runtime.service_binary])
    assert binary is not None
    reported = r.probe(binary, r.ctx.db)
    if reported is not None and reported != r.step.to_version:
        raise StepFailed(
            "wrong_version",
            f"{binary} reports version {reported}, the lock says {r.step.to_version}; nothing was switched",
            reported=reported,
        )
    return reported
