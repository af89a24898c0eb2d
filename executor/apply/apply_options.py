"""What an apply is asked to do (`ApplyOptions`), what it reports (`ApplyReport`), and the step context built
from them (`make_context`): retention from the lock's host_policy unless a flag overrides it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from obsplan.executor.artifacts.store import ArtifactSource, HttpSource, LocalDirSource
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import host_platform
from obsplan.executor.reporters import Reporter
from obsplan.executor.services.service_manager import ServiceManager
from obsplan.executor.stages.step_context import HEALTH_WINDOW, Context
from obsplan.executor.stages.step_results import StepResult
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import EXIT_OK, ObsplanError
from obsplan.lock.lockfile import HostPolicy, Lock


@dataclass(frozen=True)
class ApplyOptions:
    root: Path = Path("/")
    mode: str = "standard"
    dry_run: bool = False
    phase: str | None = None
    component: str | None = None
    service_manager: str = "auto"
    force: bool = False
    rehearse: bool = False  # rehearse one-way steps before their switch (always in `safe` mode)
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
        rehearse=options.rehearse,
        health_timeout=options.health_timeout,
        keep_versions=options.keep_versions if options.keep_versions is not None else policy.keep_versions,
        keep_days=options.keep_days if options.keep_days is not None else float(policy.retention_days),
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


def check_options(options: ApplyOptions) -> None:
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
