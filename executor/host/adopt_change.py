"""`obsplan adopt COMPONENT`: accept a hand change that is not on the lock's path (any version the hand-placed
binary reports) as apply accepts one that is (`accept`): kept under /opt/obsplan, rollback point to obsplan's
version kept, recorded as installed; `status` then shows no drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import obsplan.executor.host.accept as accept
from obsplan.executor.apply.apply_options import ApplyOptions, make_context, with_host_policy
from obsplan.executor.apply.hostrun import host_run, http_client, new_run_id
from obsplan.executor.host.host_settings import with_host_settings
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.stepfacts import StepFacts, step_outside_plan
from obsplan.executor.queries import applied_lock
from obsplan.executor.reporters import Reporter
from obsplan.executor.services.managers import make_service_manager

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError


def adopt_component(root: Path, component: str, reporter: Reporter, service_manager: str = "auto") -> dict[str, Any]:
    """Accept the hand-placed binary of `component`; refuses (exit 1) when there is none to accept."""
    layout = Layout(root.resolve())
    lock = applied_lock(layout, None)
    if lock is None or component not in lock.components:
        raise ObsplanError(
            f"no applied lock knows {component!r} under {layout.root}",
            key="COMPONENT",
            hint="adopt accepts hand changes of components 'obsplan apply' installed; apply adopts the others",
        )
    services = make_service_manager(service_manager, layout)
    with http_client(None) as client, host_run(layout, "adopt", reporter, new_run_id()) as run:
        run.start(f"adopt {component}", lock.content_sha256, "standard")
        opts = with_host_policy(ApplyOptions(root=layout.root), lock)
        ctx = make_context(layout, opts, run.reporter, run.db, client, services, run.run_id)
        current = layout.current_version(component)
        step = step_outside_plan(f"adopt:{component}", component, (current, current or "0"), "adopt", "low")
        facts = StepFacts(ctx, step, lock.components[component].runtime)
        facts = facts.with_runtime(with_host_settings(facts))
        found = accept.hand_placed(facts)
        if found is None or found[1] is None:
            run.finish("refused")
            what = "no hand-placed binary" if found is None else f"{found[0]} reports no version"
            raise ObsplanError(
                f"{component}: nothing to adopt under {layout.root} ({what})",
                key="COMPONENT",
                hint=f"'obsplan status --root {root}' shows what drifted",
                exit_code=EXIT_FAILED,
            )
        binary, version = found[0], found[1]
        row = run.db.installed(component)
        previous = layout.current_version(component)
        point = accept.accept(facts, binary, version, row["floor"] if row is not None else None)
        run.finish("ok")
    return {"component": component, "version": version, "previous": previous, "point": point, "binary": str(binary)}
