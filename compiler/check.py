"""`obsplan plan --check`: does the committed lock still match its inputs? Needs no network."""

from __future__ import annotations

from pathlib import Path

from obsplan.lockfile import Lock, load_lock

from .inputs import Inputs
from .run import Settings, compile_environment


def check_lock(
    lock_path: Path, config_dir: Path, env: str, inputs: Inputs, settings: Settings, allow: frozenset[str]
) -> list[str]:
    """Every reason the lock is stale or unsafe to apply, one line each (empty: the lock is good)."""
    problems: list[str] = []
    raw = load_lock(lock_path, verify=False)
    if raw.content_sha256 != raw.body_digest():
        problems.append(
            f"{lock_path}: content_sha256 does not match: the lock was edited by hand after it was "
            "generated; regenerate it with 'obsplan plan'"
        )
    # host facts (`plan --facts`) are not re-read; a promoted lock is compared after the re-compile below
    recorded = {k: v for k, v in raw.inputs.items() if not k.startswith(("facts:", "promoted:"))}
    for name in sorted(set(recorded) | set(inputs.digests)):
        old, new = recorded.get(name), inputs.digests.get(name)
        if old != new:
            what = "added" if old is None else "removed" if new is None else "changed"
            problems.append(f"{lock_path}: input {name} {what} since the lock was generated; re-run 'obsplan plan'")
    # Re-compile offline against the lock itself: versions are kept while they still satisfy the config and
    # the matrix, so any difference is a locked version that no longer fits.
    result = compile_environment(
        config_dir, env, settings, offline=True, previous_lock=lock_path, allow=allow, inputs=inputs
    )
    problems += [f"refused by rule {r}" for r in result.refusals]
    promoted = {k: v for k, v in result.lock.inputs.items() if k.startswith("promoted:")}
    if promoted != {k: v for k, v in raw.inputs.items() if k.startswith("promoted:")}:
        problems.append(f"{lock_path}: the promoted environment's lock changed since; re-run 'obsplan plan'")
    problems += _differences(raw, result.lock, str(lock_path))
    for name, comp in sorted(raw.components.items()):
        if not raw.host_policy.require_checksum_verification:
            break  # safety.require_checksum_verification: false: a missing sha256 is accepted (with a warning)
        for platform, art in sorted(comp.artifacts.items()):
            if not art.sha256:
                problems.append(
                    f"{lock_path}: components.{name}.artifacts.{platform}.sha256 is missing "
                    f"(run 'obsplan plan' online to fetch {art.checksum_url or 'the checksum'})"
                )
    return problems


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
    old_steps = [(s.id, s.from_version) for s in old.plan.steps]
    new_steps = [(s.id, s.from_version) for s in new.plan.steps]
    if old_steps != new_steps and not out:
        out.append(f"{where}: plan.steps differ from a fresh compile: {old_steps} vs {new_steps}")
    return out
