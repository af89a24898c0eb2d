"""Host facts as one step sees them: the component's installed and served version, its rendered service
definition and files. Reads facts only, except `record_host`, which writes what the host runs to the state."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from obsplan.executor.host.probes import healthy, probe_binary_version, served_build_info
from obsplan.executor.services.managers import render_context
from obsplan.executor.services.service_render import files_current, render_service
from obsplan.executor.stages.step_context import Context
from obsplan.executor.state.state_db import StateDB

from obsplan.lock.lockfile import Runtime, Step


@dataclass(frozen=True, eq=False)
class StepFacts:
    """One step's view of the host: the run's context, the step, and the component's runtime (with the settings
    bound from the host, `with_runtime`). A value: a stage reads it, none changes it."""

    ctx: Context
    step: Step
    runtime: Runtime

    @property
    def c(self) -> str:
        return self.step.component

    def with_runtime(self, runtime: Runtime) -> StepFacts:
        return replace(self, runtime=runtime)

    def emit(self, event: str, **metadata: Any) -> None:
        self.ctx.emit(self.c, event, step=self.step.id, **metadata)

    def host_version(self) -> tuple[str | None, str]:
        """(version, how it was observed): the `current` link, else a binary found at the stable path."""
        link = self.ctx.layout.current_version(self.c)
        if link is not None:
            return link, "current_link"
        exposed = self.ctx.layout.bin_dir / self.runtime.service_binary
        if exposed.exists():
            return self.probe(exposed, self._cache()), "binary_probe"
        return None, "absent"

    def _cache(self) -> StateDB | None:
        return None if self.ctx.dry_run else self.ctx.db

    def probe(self, binary: Path, cache: StateDB | None) -> str | None:
        return probe_binary_version(binary, self.runtime.version_args, cache, self.runtime.service.version_patterns)

    def served_version(self, expected: str | None = None) -> str | None:
        """The version the running service proves it serves (build_info metric, else health + binary).
        The metric's name may depend on the version (`expected`; default: the host's, else the target)."""
        expected = expected or self.ctx.layout.current_version(self.c) or self.step.to_version
        metric = self.runtime.build_info_metric_for(expected)
        if metric:
            return served_build_info(self.ctx.client, self.runtime.port, metric, host=self.runtime.probe_host())
        if self.healthy():
            return self.probe(self.ctx.layout.bin_dir / self.runtime.service_binary, self._cache())
        return None

    def healthy(self) -> bool:
        return healthy(self.ctx.client, self.runtime.port, self.runtime.health_path, host=self.runtime.probe_host())

    def rendered(self, version: str) -> str:
        ctx = render_context(self.c, self.runtime, version, self.ctx.layout)
        return self.ctx.services.render(ctx)

    def files_current(self, version: str) -> bool:
        """The files the service needs at `version` (config, credentials) are written as rendered."""
        return files_current(render_service(self.c, self.runtime, version, self.ctx.layout), self.runtime.user)

    def record_host(self, host: str | None, how: str) -> None:
        """Host facts win: when the host runs another version than the state DB says, record what it runs."""
        if self.ctx.dry_run or self.ctx.db is None:
            return
        db_row = self.ctx.db.installed(self.c)
        recorded = db_row["version"] if db_row is not None else None
        if host != recorded:
            self.emit("host_drift", recorded=recorded, observed=host, observed_by=how)
            self.ctx.db.set_installed(
                self.c,
                host,
                previous=recorded,
                floor=db_row["floor"] if db_row is not None else None,
                source=f"observed:{how}",
                last_result="observed",
            )


def step_outside_plan(step_id: str, component: str, versions: tuple[str | None, str], phase: str, risk: str) -> Step:
    """The step a status probe, an adoption or a rollback is journalled and reported as (it is in no plan): only
    its id, component, versions (from, to), phase and risk are read."""
    return Step.model_validate(
        {
            "id": step_id,
            "component": component,
            "from_version": versions[0],
            "to_version": versions[1],
            "phase": phase,
            "requires": [],
            "risk": risk,
            "reasons": [],
            "artifacts": {},
        }
    )
