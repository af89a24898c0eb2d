"""What a lock must satisfy beyond its field types before any command acts on it: the plan is a graph over
the lock's own components and phases (no step listed twice, requiring itself, naming a missing component or
phase, or requiring a missing step), and each version it names (a component's `current`, a step's from and to)
passes the path policy's version check. Names, file names, paths and URLs are checked by the field types
(obsplan/kernel/pathtypes.py), the same policy the compiler applies to the configuration. Artifacts are not
checked here: the executor verifies each against its sha256 before anything else."""

from __future__ import annotations

from typing import TYPE_CHECKING

import obsplan.kernel.pathpolicy as pathpolicy
from obsplan.kernel.errors import ObsplanError

if TYPE_CHECKING:
    from obsplan.lock.lockfile import Lock

_HINT = "regenerate it with 'obsplan plan'"


def check_lock(lock: Lock, file: str) -> None:
    """Raise ObsplanError (exit 2) for the first inconsistency, naming the key."""
    for name, comp in lock.components.items():
        if comp.current is not None:
            _value(pathpolicy.check_version_text, comp.current, file, f"components.{name}.current")
    seen: set[str] = set()
    for i, step in enumerate(lock.plan.steps):
        key = f"plan.steps.{i}"
        if step.id in seen:
            raise ObsplanError(f"step {step.id!r} is listed twice", file=file, key=f"{key}.id", hint=_HINT)
        seen.add(step.id)
        if step.component not in lock.components:
            raise ObsplanError(
                f"step {step.id!r} names component {step.component!r}, which the lock does not have",
                file=file,
                key=f"{key}.component",
                hint=_HINT,
            )
        if step.id in step.requires:
            raise ObsplanError(f"step {step.id!r} requires itself", file=file, key=f"{key}.requires", hint=_HINT)
        if step.phase not in lock.plan.phases:
            raise ObsplanError(
                f"step {step.id!r} is in phase {step.phase!r}, which the plan does not list",
                file=file,
                key=f"{key}.phase",
                hint=_HINT,
            )
        for v, what in ((step.to_version, "to_version"), (step.from_version, "from_version")):
            if v is not None:
                _value(pathpolicy.check_version_text, v, file, f"{key}.{what}")
    ids = {s.id for s in lock.plan.steps}
    for i, step in enumerate(lock.plan.steps):
        missing = [r for r in step.requires if r not in ids]
        if missing:
            raise ObsplanError(
                f"step {step.id!r} requires {missing[0]!r}, which is not in the plan",
                file=file,
                key=f"plan.steps.{i}.requires",
                hint=_HINT,
            )


def _value(check, value: str, file: str, key: str) -> None:  # type: ignore[no-untyped-def]
    try:
        check(value)
    except ValueError as exc:
        raise ObsplanError(str(exc), file=file, key=key, hint=_HINT) from None
