"""Settings a step's definition requires that the lock does not give (`Step.settings_from_host`, e.g.
mysqld_exporter's `runtime.mysql` when versions.yaml has none): taken from the running installation before
any step runs; when it has none, only that component's steps are refused (exit 1, naming the setting), before
anything of it is touched, and the other steps go ahead."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from obsplan.executor.host.mysql_from_host import mysql_from_host
from obsplan.executor.stages.step_results import StepResult

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Runtime, Step

if TYPE_CHECKING:
    from obsplan.executor.host.stepfacts import StepFacts
    from obsplan.executor.stages.step_context import Context
    from obsplan.executor.stages.step_runner import StepRunner

READERS: dict[str, Callable[[StepFacts], tuple[Any, str] | None]] = {"mysql": mysql_from_host}
SETTINGS_MISSING = "settings_missing"


def bind(steps: list[Step], runners: dict[str, StepRunner], ctx: Context) -> None:
    """Give every runner of a component the settings its steps take from the host, or refuse its steps."""
    for c in sorted({s.component for s in steps}):
        mine = [s for s in steps if s.component == c and runners[s.id].result is None]
        first = runners[mine[0].id] if mine else None
        need: list[str] = sorted({str(k) for s in mine for k in s.settings_from_host})
        if first is None or not (need := [k for k in need if getattr(first.facts.runtime, k) is None]):
            continue
        found, where, why = _read(first.facts, need)
        if len(found) < len(need):
            _refuse(mine, runners, [k for k in need if k not in found], why)
            continue
        runtime = first.facts.runtime.model_copy(update=found)
        for r in runners.values():
            if r.c == c:
                r.facts = r.facts.with_runtime(runtime)
        ctx.emit(c, "settings_from_host", settings=where)


def _read(facts: StepFacts, need: list[str]) -> tuple[dict[str, Any], dict[str, str], str]:
    found: dict[str, Any] = {}
    where: dict[str, str] = {}
    why = "the running installation has none"
    for key in need:
        reader = READERS.get(key)
        try:
            got = reader(facts) if reader is not None else None
        except ObsplanError as exc:
            got, why = None, str(exc)
        if got is not None:
            found[key], where[key] = got
    return found, where, why


def _refuse(mine: list[Step], runners: dict[str, StepRunner], missing: list[str], why: str) -> None:
    keys = ", ".join(f"runtime.{k}" for k in missing)
    c = mine[0].component
    message = (
        f"{c} needs {keys}: versions.yaml gives none and {why} (no unit, program, process or ~/.my.cnf "
        f"holding it); nothing of {c} was changed"
    )
    hint = f"add {keys} to components.{c} in versions.yaml and re-run 'obsplan plan'"
    for s in mine:
        runners[s.id].result = StepResult(s.id, c, "failed", SETTINGS_MISSING, {"error": message, "hint": hint})
        runners[s.id].emit("step_failed", reason=SETTINGS_MISSING, error=message, hint=hint)


def with_host_settings(facts: StepFacts) -> Runtime:
    """`facts.runtime` with the settings its definition requires and the lock lacks, read from the host (for
    `rollback` and `adopt`, which render a definition outside a plan step); unchanged when the host has none
    (rendering then names what is missing)."""
    found = {}
    for key in facts.runtime.service.requires:
        reader = READERS.get(key)
        got = reader(facts) if getattr(facts.runtime, key) is None and reader is not None else None
        if got is not None:
            found[key] = got[0]
    return facts.runtime.model_copy(update=found) if found else facts.runtime
