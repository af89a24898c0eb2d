"""upgrade-policy.yaml: safety switches, approvals, phases, retention, soak and archive limits."""

from __future__ import annotations

from typing import Literal

from obsplan.compiler.config.model_errors import Strict
from obsplan.compiler.plan.soak_rules import parse_duration
from pydantic import Field, field_validator

from obsplan.kernel.pathtypes import Name, RelFile, Url
from obsplan.lock.host_policy import KEEP_VERSIONS, RETENTION_DAYS
from obsplan.lock.lockfile import PostVerify, Risk


class AutoUpgradeSpec(Strict):
    enabled: bool = False
    allowed_risk_levels: list[Risk] = Field(default_factory=lambda: list[Risk](["low"]))


class SafetySpec(Strict):
    compatibility_check: bool = True  # false: overridable matrix rules warn instead of refusing
    breaking_change_detection: bool = True  # false: no changelog parsing (no breaking_changes, no risk raise)
    security_advisory_check: bool = True  # false: no advisory database, no OSV queries
    require_checksum_verification: bool = True  # false: apply may install artifacts the lock has no sha256 for
    rollback_on_failure: bool = True


class RollbackSpec(Strict):
    keep_versions: int = Field(default=KEEP_VERSIONS, ge=1, le=1000)
    retention_days: int = Field(default=RETENTION_DAYS, ge=0, le=36500)


class ArchiveLimitsSpec(Strict):
    max_total_bytes: int | None = Field(default=None, ge=1, le=2**50)
    max_members: int | None = Field(default=None, ge=1, le=10_000_000)
    max_ratio: float | None = Field(default=None, gt=1, le=1e6)


class OsvApiSpec(Strict):
    enabled: bool = False
    url: Url = "https://api.osv.dev"


class PhaseSpec(Strict):
    name: str = Field(max_length=64)
    components: list[Name]
    aliases: list[str] = Field(
        default_factory=list, description="other names `apply --phase` accepts for this phase (e.g. older names)"
    )


class PolicyFile(Strict):
    safety: SafetySpec = Field(default_factory=SafetySpec)
    auto_upgrade: AutoUpgradeSpec = Field(default_factory=AutoUpgradeSpec)
    rollback: RollbackSpec = Field(default_factory=RollbackSpec)
    minimum_release_age_days: int = Field(default=0, ge=0, le=36500)
    phases: list[PhaseSpec] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)
    approvals: list[str] = Field(default_factory=list)
    advisories: list[str] = Field(default_factory=list)
    osv_api: OsvApiSpec = Field(default_factory=OsvApiSpec)
    on_manual_change: Literal["skip", "reinstall"] = "skip"
    download_deadline_seconds: int = Field(default=900, ge=1, le=86_400)
    archive_limits: ArchiveLimitsSpec = Field(default_factory=ArchiveLimitsSpec)
    matrix_file: RelFile | None = None
    verify: PostVerify | None = Field(
        default=None, description="post-step PromQL per component (none by default; docs/verify.md)"
    )
    soak: dict[str, dict[str, str | int]] = Field(
        default_factory=dict, description="component → {version prefix: duration} held before the next hop"
    )

    @field_validator("soak")
    @classmethod
    def _soak(cls, v: dict[str, dict[str, str | int]]) -> dict[str, dict[str, str | int]]:
        for versions in v.values():
            for duration in versions.values():
                parse_duration(duration)
        return v
