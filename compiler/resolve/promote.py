"""Promotion: an environment with `promote_from: staging` takes exactly the versions, artifacts and checksums
of staging's lock (found in the plans folder), refused per component when a rule of this environment forbids
the version (an exclusion, a different pin, a range, a `max_version` rule, a downgrade); the matrix rules on
the way there (required hops, floors, requirements) are checked as for any plan."""

from __future__ import annotations

from pathlib import Path

from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.config.versions_file import ComponentSpec, EnvironmentSpec, Strategy
from obsplan.compiler.plan.dag import Refusal
from obsplan.compiler.resolve.pick_target import Target
from obsplan.compiler.sources.known_checksums import FolderLock

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Lock, Reason


def find_promoted(
    env: str, espec: EnvironmentSpec | None, locks: list[FolderLock], dirs: list[Path], file: str
) -> FolderLock | None:
    """The lock of the environment this one promotes from (its `<env>.lock` first), or None without promote_from."""
    src = espec.promote_from if espec else None
    if src is None:
        return None
    key = f"environments.{env}.promote_from"
    if src == env:
        raise ObsplanError("an environment cannot promote from itself", file=file, key=key, hint="name another one")
    found = sorted((fl for fl in locks if fl.lock.environment == src), key=lambda fl: fl.path.name != f"{src}.lock")
    if not found:
        where = ", ".join(sorted({str(d) for d in dirs}))
        raise ObsplanError(
            f"no lock of environment {src!r} in {where}",
            file=file,
            key=key,
            hint=f"run 'obsplan plan --env {src}' with its lock in the same folder first",
        )
    return found[0]


def promoted_target(
    name: str,
    spec: ComponentSpec,
    strategy: Strategy,
    promoted: FolderLock,
    current: Version | None,
    matrix: MatrixFile,
) -> Target | Refusal:
    """The promoted environment's version of `name`, or the refusal naming the component and the rule."""
    src = promoted.lock.environment
    comp = promoted.lock.components.get(name)
    if comp is None:
        return Refusal("promote-from", "mandatory", f"{name} is not in {src}'s lock ({promoted.path.name})")
    v = comp.version_value
    if v is None:
        return Refusal("promote-from", "mandatory", f"{name}: {src}'s {comp.version} is not a release version")
    why = _forbidden(name, spec, strategy, v, current, matrix)
    if why:
        return Refusal("promote-from", "mandatory", f"{name}: {src}'s {v} cannot be promoted here: {why}")
    return Target(
        v, strategy, [Reason(code="promoted", detail=f"{v} promoted from {src}'s lock {_lock_id(promoted.lock)}")]
    )


def _forbidden(
    name: str, spec: ComponentSpec, strategy: Strategy, v: Version, current: Version | None, matrix: MatrixFile
) -> str | None:
    if v in spec.exclude:
        return "it is in exclude"
    if strategy == "pinned" and spec.version and spec.version != v:
        return f"this environment pins {spec.version}"
    if strategy == "range" and spec.version_range and not spec.version_range.contains(v):
        return f"outside version_range {spec.version_range}"
    for rule in matrix.rules:
        barred = rule.kind == "max_version" and rule.component == name and rule.versions
        if rule.versions is not None and barred and rule.versions.contains(v):
            return f"rule {rule.id}: {rule.reason}"
    if current is not None and v < current and strategy != "pinned":
        return f"a downgrade from the installed {current} (pin it to allow)"
    return None


def _lock_id(lock: Lock) -> str:
    return lock.content_sha256[:12]
