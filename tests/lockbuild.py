"""Sealed locks for tests, shared by the executor and bundle fixtures: one plan step per hop of a component,
chained in order, and the lock written as `obsplan plan` would (sealed, atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from obsplan import __version__
from obsplan.lock.lockfile import FORMAT_VERSION, Artifact, ComponentLock, Lock, Plan, Reason, Runtime, SourceInfo, Step
from obsplan.safeio.fsio import write_atomic


def hop_step(
    sid: str,
    component: str,
    from_version: str | None,
    to_version: str,
    phase: str,
    after: str | None,
    artifacts: dict[str, Artifact],
    **extra: Any,
) -> Step:
    """A low-risk step `sid` upgrading `component`, required to run after step `after` (None: first)."""
    return Step(
        id=sid,
        component=component,
        from_version=from_version,
        to_version=to_version,
        phase=phase,
        requires=[after] if after else [],
        risk="low",
        reasons=[Reason(code="test", detail="built by the test")],
        artifacts=artifacts,
        **extra,
    )


def component_lock(
    current: str | None, version: str, artifacts: dict[str, Artifact], runtime: Runtime, github_repo: str | None
) -> ComponentLock:
    """A component locked at `version` (from `current`), as resolved from the snapshot."""
    return ComponentLock(
        version=version,
        current=current,
        strategy="latest",
        github_repo=github_repo,
        source=SourceInfo(kind="snapshot", as_of=None),
        artifacts=artifacts,
        runtime=runtime,
    )


def write_sealed_lock(
    path: Path,
    components: dict[str, ComponentLock],
    steps: list[Step],
    phases: list[str],
    *,
    platforms: list[str],
    environment: str = "test",
    inputs: dict[str, str] | None = None,
    **extra: Any,
) -> Path:
    """Seal a lock of these components and steps (`extra`: further Lock fields, e.g. host_policy) into `path`."""
    lock = Lock(
        format_version=FORMAT_VERSION,
        obsplan_version=__version__,
        environment=environment,
        platforms=platforms,
        inputs=inputs or {},
        components=components,
        plan=Plan(phases=phases, steps=steps),
        **extra,
    ).sealed()
    write_atomic(path, lock.to_json())
    return path
