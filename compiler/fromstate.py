"""The from-state: the version a plan assumes installed before its first step.

In order of authority: host facts (`plan --facts`, observed on the host), an explicit `current:` in
versions.yaml that is news to the previous lock (it recorded another statement), the previous lock, module
manifests.
After a previous lock the rule is the one of `pip-compile`/`pip-sync`: an unchanged target keeps that lock's
from-state (the plan is the same plan); a changed target starts from the previous target, assumed applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import EnvironmentSpec, Inputs
from .lock import ComponentLock, Lock
from .versions import Version

Origin = Literal["facts", "current", "lock", "lock_target", "module", "none"]


@dataclass(frozen=True)
class FromState:
    version: Version | None
    origin: Origin


def initial_from_state(
    name: str,
    inputs: Inputs,
    espec: EnvironmentSpec | None,
    previous: Lock | None,
    facts: dict[str, Version | None] | None,
) -> FromState:
    """The from-state before the target is known (`after_target` settles the previous-lock case)."""
    if facts is not None and name in facts:
        return FromState(facts[name], "facts")
    stated_given = espec is not None and name in espec.current
    stated = espec.current.get(name) if espec is not None else None
    prev = previous.components.get(name) if previous else None
    if prev is not None and (not stated_given or _followed(previous, name, stated, prev.current)):
        return FromState(Version.parse(prev.current) if prev.current else None, "lock")
    if stated_given:
        return FromState(Version.parse(stated) if stated else None, "current")
    if name in inputs.module_versions:
        return FromState(Version.parse(inputs.module_versions[name]), "module")
    return FromState(None, "none")


def _followed(previous: Lock | None, name: str, stated: str | None, assumed: str | None) -> bool:
    """Whether the previous lock already followed this `current:` statement (then it is no news): it recorded the
    same statement, or (a lock that recorded none) it assumed that very version."""
    if previous is not None and previous.stated_current is not None:
        return name in previous.stated_current and previous.stated_current[name] == stated
    return stated == assumed


def after_target(state: FromState, prev: ComponentLock | None, target: Version) -> FromState | None:
    """When the from-state came from the previous lock and the target moved: start from the previous target
    (it is assumed applied). None: keep `state`."""
    if state.origin != "lock" or prev is None:
        return None
    applied = Version.parse(prev.version)
    if applied == target or applied == state.version:
        return None
    return FromState(applied, "lock_target")
