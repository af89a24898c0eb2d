"""The from-state: the version a plan assumes installed before its first step.

In order of authority: host facts (`plan --facts`, observed on the host), an explicit `current:` in
versions.yaml that changed since the previous lock (the lock records the statement it honoured, `stated_current`),
the previous lock, module manifests.
After a previous lock the rule is the one of `pip-compile`/`pip-sync`: an unchanged target keeps that lock's
from-state (the plan is the same plan); a changed target starts from the previous target, assumed applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.specs_stage import Specs
from obsplan.compiler.config.versions_file import EnvironmentSpec

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.version_types import VersionValue
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import ComponentLock, Lock

if TYPE_CHECKING:
    from obsplan.lock.hostfacts import FactsInput

Origin = Literal["facts", "current", "lock", "lock_target", "module", "none"]


@dataclass(frozen=True)
class FromState:
    version: Version | None
    origin: Origin


def from_states(specs: Specs, inputs: Inputs, previous: Lock | None, facts: FactsInput | None) -> dict[str, FromState]:
    """The from-state stage: each component's from-state before its target is known. Host facts must be of a
    platform the plan is for."""
    for fname, platform in sorted(facts.platforms.items()) if facts else []:
        if platform not in specs.platforms:
            raise ObsplanError(
                f"host facts {fname} are of a {platform} host, but the plan is for {', '.join(specs.platforms)}",
                file=specs.file,
                key="global.platforms",
                hint=f"add {platform} to platforms (or the environment's platforms)",
            )
    versions = facts.versions if facts else None
    return {name: initial_from_state(name, inputs, specs.env, previous, versions) for name in specs.entries}


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
    if prev is not None and (
        not stated_given or _text(stated) == prev.current or stated_text(espec, name) == prev.stated_current
    ):
        return FromState(prev.current_value, "lock")
    if stated_given:
        return FromState(stated.version if stated else None, "current")
    if name in inputs.module_versions:
        return FromState(inputs.module_versions[name], "module")
    return FromState(None, "none")


def stated_text(espec: EnvironmentSpec | None, name: str) -> str | None:
    """What versions.yaml's `current:` says for `name`, as the lock records it ('none': stated not installed)."""
    if espec is None or name not in espec.current:
        return None
    return _text(espec.current[name]) or "none"


def _text(v: VersionValue | None) -> str | None:
    return None if v is None else str(v)


def after_target(state: FromState, prev: ComponentLock | None, target: Version) -> FromState | None:
    """When the from-state came from the previous lock and the target moved: start from the previous target
    (it is assumed applied). None: keep `state`."""
    if state.origin != "lock" or prev is None:
        return None
    applied = prev.version_value
    if applied is None or applied == target or applied == state.version:
        return None
    return FromState(applied, "lock_target")
