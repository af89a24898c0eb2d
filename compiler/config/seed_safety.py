"""Seed 000's `global.safety` block (versions.yaml), honoured by mapping each key onto the policy setting that
does the work:

| `global.safety` key                    | policy setting                                | effect                        |
|----------------------------------------|-----------------------------------------------|-------------------------------|
| `compatibility_check`                  | `safety.compatibility_check`                  | overridable rules only warn   |
| `breaking_change_detection`            | `safety.breaking_change_detection`            | changelog parsing on/off      |
| `security_advisory_check`              | `safety.security_advisory_check`              | advisories / OSV on/off       |
| `require_checksum_verification`        | `safety.require_checksum_verification`        | lock `host_policy`            |
| `auto_upgrade`                         | `auto_upgrade`                                | step `approval`               |
| `rollback.auto_rollback_on_failure`    | `safety.rollback_on_failure`                  | lock `host_policy`            |
| `rollback.retention_count`             | `rollback.keep_versions`                      | lock `host_policy`            |
| `rollback.retention_days`              | `rollback.retention_days`                     | lock `host_policy`            |

A key set in `global.safety` wins over upgrade-policy.yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obsplan.compiler.config.policy import PolicyFile
    from obsplan.compiler.config.versions_file import SeedSafetySpec


def with_seed_safety(policy: PolicyFile, seed: SeedSafetySpec | None) -> PolicyFile:
    """The policy with every key the seed block sets applied over it."""
    if seed is None:
        return policy
    safety: dict[str, Any] = {
        k: getattr(seed, k)
        for k in (
            "compatibility_check",
            "breaking_change_detection",
            "security_advisory_check",
            "require_checksum_verification",
        )
        if getattr(seed, k) is not None
    }
    rollback: dict[str, Any] = {}
    if seed.rollback is not None:
        if seed.rollback.auto_rollback_on_failure is not None:
            safety["rollback_on_failure"] = seed.rollback.auto_rollback_on_failure
        if seed.rollback.retention_count is not None:
            rollback["keep_versions"] = seed.rollback.retention_count
        if seed.rollback.retention_days is not None:
            rollback["retention_days"] = seed.rollback.retention_days
    update: dict[str, Any] = {
        "safety": policy.safety.model_copy(update=safety),
        "rollback": policy.rollback.model_copy(update=rollback),
    }
    if seed.auto_upgrade is not None:
        update["auto_upgrade"] = seed.auto_upgrade
    return policy.model_copy(update=update)
