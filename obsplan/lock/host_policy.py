"""The lock's host policy: the values the executor applies on the host, copied from upgrade-policy.yaml by the
compiler (part of the lock contract, `obsplan/lock/lockfile.py`, which re-exports these models)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_serializer

from obsplan.kernel.pathtypes import Name, Url

KEEP_VERSIONS = 3
"""Versions and rollback points kept per component when the policy says nothing (the one retention default)."""
RETENTION_DAYS = 30
"""Days older versions and used backups are kept when the policy says nothing."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArchiveLimits(Strict):
    """Ceilings checked while extracting, before the disk fills (defaults fit every real release, with room)."""

    max_total_bytes: int = Field(default=4 * 1024**3, ge=1, description="uncompressed bytes of one archive")
    max_members: int = Field(default=20_000, ge=1)
    max_ratio: float = Field(default=200.0, gt=1, description="uncompressed / compressed size")


class PostVerify(Strict):
    """PromQL expressions that must hold after a component's step (seed 003's post-upgrade validation); one
    that does not hold within `within_seconds` rolls the step back like a failed health check."""

    prometheus_url: Url | None = Field(
        default=None, description="the Prometheus asked; null: the one this lock installs on the host"
    )
    within_seconds: int = Field(default=60, ge=1, le=3600, description="how long an expression may take to hold")
    expressions: dict[Name, list[Annotated[str, StringConstraints(min_length=1, max_length=2000)]]] = Field(
        default_factory=dict, description="component → expressions; one holds when its instant query is non-empty"
    )


class HostPolicy(Strict):
    """The policy values the executor applies on the host, copied from upgrade-policy.yaml by the compiler."""

    keep_versions: int = Field(
        default=KEEP_VERSIONS, ge=1, description="versions and rollback points kept per component"
    )
    retention_days: int = Field(default=RETENTION_DAYS, ge=0, description="older versions and used backups are pruned")
    auto_rollback_on_failure: bool = True
    require_checksum_verification: bool = Field(
        default=True,
        description="false: artifacts without a sha256 are installed with a warning, as --allow-unverified",
    )
    on_manual_change: Literal["skip", "reinstall"] = "skip"
    download_deadline_seconds: int = Field(default=900, ge=1, description="overall deadline per artifact")
    archive_limits: ArchiveLimits = Field(default_factory=ArchiveLimits)
    verify: PostVerify | None = Field(default=None, description="null: no post-step PromQL (none by default)")

    @model_serializer(mode="wrap")
    def _omit_no_verify(self, handler: Any) -> Any:
        """Without `verify` the field is left out, so locks written before it existed keep their hash."""
        data = handler(self)
        if isinstance(data, dict) and data.get("verify") is None:
            data.pop("verify", None)
        return data
