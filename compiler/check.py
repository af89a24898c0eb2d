"""`obsplan plan --check`: does the committed lock say what these inputs decide? Needs no network.

It compares decisions, not bytes: versions, from-states, artifacts, the checksums the inputs can give, steps
(order, requirements, phases, approvals) and the host policy. Which obsplan version or lock format wrote the
lock, and the digest of obsplan's own shipped files, are not questions it asks: a lock from an earlier obsplan
that decides the same passes. A missing sha256 is not a difference (the report's summary and apply's refusal
say it) unless `--require-checksums` asks for it.
"""

from __future__ import annotations

from pathlib import Path

from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.plan_options import Options
from obsplan.compiler.run import Settings, compile_environment

from obsplan.lock.lockfile import Artifact, Lock, load_lock

SHIPPED = "(shipped)"  # inputs named so are obsplan's own files: they change with obsplan, not with the config


def check_lock(
    lock_path: Path, inputs: Inputs, opts: Options, settings: Settings, *, require_checksums: bool = False
) -> list[str]:
    """Every way the lock differs from what the inputs decide for `opts.environment` (its `allow` let through),
    one line each (empty: the lock is good)."""
    problems: list[str] = []
    raw = load_lock(lock_path, verify=False)
    if raw.content_sha256 != raw.body_digest():
        problems.append(
            f"{lock_path}: content_sha256 does not match: the lock was edited by hand after it was "
            "generated; regenerate it with 'obsplan plan'"
        )
    problems += _changed_inputs(raw, inputs, str(lock_path))
    # Re-compile offline against the lock itself: versions are kept while they still satisfy the config and
    # the matrix, so any difference is a locked version that no longer fits.
    again = Options(opts.environment, opts.now, offline=True, allow=opts.allow, previous_lock=lock_path)
    result = compile_environment(inputs, again, settings)
    problems += [f"refused by rule {r}" for r in result.refusals]
    promoted = {k: v for k, v in result.lock.inputs.items() if k.startswith("promoted:")}
    if promoted != {k: v for k, v in raw.inputs.items() if k.startswith("promoted:")}:
        problems.append(f"{lock_path}: the promoted environment's lock changed since; re-run 'obsplan plan'")
    problems += _differences(raw, result.lock, str(lock_path))
    if require_checksums:
        problems += missing_checksums(raw, str(lock_path))
    return problems


def _changed_inputs(raw: Lock, inputs: Inputs, where: str) -> list[str]:
    """The configuration files edited since the lock (host facts are not re-read; shipped files are obsplan's)."""
    skip = ("facts:", "promoted:")
    recorded = {k: v for k, v in raw.inputs.items() if not k.startswith(skip) and not k.endswith(SHIPPED)}
    current = {k: v for k, v in inputs.digests.items() if not k.endswith(SHIPPED)}
    out = []
    for name in sorted(set(recorded) | set(current)):
        old, new = recorded.get(name), current.get(name)
        if old != new:
            what = "added" if old is None else "removed" if new is None else "changed"
            out.append(f"{where}: input {name} {what} since the lock was generated; re-run 'obsplan plan'")
    return out


def missing_checksums(lock: Lock | Path, where: str | None = None) -> list[str]:
    """One line per artifact of the lock (or lock file) without a sha256."""
    if isinstance(lock, Path):
        lock, where = load_lock(lock, verify=False), where or str(lock)
    out = []
    for name, comp in sorted(lock.components.items()):
        for platform, art in sorted(comp.artifacts.items()):
            if not art.sha256:
                out.append(
                    f"{where}: components.{name}.artifacts.{platform}.sha256 is missing "
                    f"(run 'obsplan plan' online to fetch {art.checksum_url or 'the checksum'})"
                )
    return out


def _differences(old: Lock, new: Lock, where: str) -> list[str]:
    out = []
    for name in sorted(set(old.components) | set(new.components)):
        a, b = old.components.get(name), new.components.get(name)
        if a is None:
            out.append(f"{where}: component {name} is configured but not in the lock")
        elif b is None:
            out.append(f"{where}: component {name} is in the lock but no longer configured")
        elif a.version != b.version:
            out.append(
                f"{where}: components.{name}.version {a.version} no longer satisfies its strategy/matrix "
                f"(would be {b.version})"
            )
        else:
            out += _artifact_differences(f"{where}: components.{name}.artifacts", a.artifacts, b.artifacts)
    if out:
        return out  # the steps follow from the versions: one line for the cause is enough
    out += _step_differences(old, new, where)
    if old.host_policy != new.host_policy:
        out.append(f"{where}: host_policy differs from what upgrade-policy.yaml decides; re-run 'obsplan plan'")
    return out


def _artifact_differences(key: str, old: dict[str, Artifact], new: dict[str, Artifact]) -> list[str]:
    out = []
    for platform in sorted(set(old) | set(new)):
        a, b = old.get(platform), new.get(platform)
        if a is None or b is None:
            out.append(f"{key}.{platform} is {'not in the lock' if a is None else 'no longer targeted'}")
        elif (a.url, a.filename) != (b.url, b.filename):
            out.append(f"{key}.{platform}.url {a.url} differs from what the inputs decide ({b.url})")
        elif b.sha256 and a.sha256 != b.sha256:
            said = a.sha256 or "nothing"
            out.append(f"{key}.{platform}.sha256 is {said}, the inputs give {b.sha256}; re-run 'obsplan plan'")
    return out


def _step_differences(old: Lock, new: Lock, where: str) -> list[str]:
    """Steps, their order, phases (an old name the policy keeps as an alias is the same phase) and approvals;
    a lock may require more than the inputs do (obsplan 0.1 also wrote the phase order into `requires`), never
    less."""
    aliases = new.plan.phase_aliases
    was = [(s.id, s.from_version, aliases.get(s.phase, s.phase), s.approval) for s in old.plan.steps]
    now = [(s.id, s.from_version, s.phase, s.approval) for s in new.plan.steps]
    if was != now:
        return [f"{where}: plan.steps differ from a fresh compile: {was} vs {now}"]
    old_requires = {s.id: set(s.requires) for s in old.plan.steps}
    return [
        f"{where}: plan.steps {s.id} does not require {', '.join(sorted(set(s.requires) - old_requires[s.id]))}, "
        "which the inputs decide it needs; re-run 'obsplan plan'"
        for s in new.plan.steps
        if not set(s.requires) <= old_requires[s.id]
    ]
