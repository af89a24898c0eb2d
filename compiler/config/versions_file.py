"""versions.yaml: global settings, component entries, environments (overrides, stated versions, promotion)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from obsplan.compiler.config.model_errors import Strict
from obsplan.compiler.config.policy import AutoUpgradeSpec
from pydantic import ConfigDict, Field, field_validator, model_validator

import obsplan.kernel.pathpolicy as pathpolicy
from obsplan.kernel.pathtypes import (
    ArtifactTemplate,
    BinaryName,
    ChecksumsTemplate,
    DownloadTemplate,
    Glob,
    HostPath,
    Name,
    Platform,
    Url,
    VersionText,
)
from obsplan.kernel.version_types import RangeValue, VersionValue
from obsplan.lock.service_def import ClusterSettings, MysqlConnection, StorageSettings, UserName

Strategy = Literal["latest", "pinned", "range", "lts"]

REPO_RE = re.compile(r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$")


def _is_range(text: str) -> bool:
    """A version constraint (`>=3.0.0 <4.0.0`, `~3.6`), not one release version."""
    try:
        VersionValue(text)
        return False
    except ValueError:
        pass
    try:
        RangeValue(text)
        return True
    except ValueError:
        return False


class RuntimeSpec(Strict):
    binaries: dict[BinaryName, Glob] | None = None
    service_binary: BinaryName | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    health_path: str | None = Field(default=None, pattern=r"^/[^\s]{0,255}$")
    build_info_metric: str | None = Field(default=None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,127}$")
    version_args: list[str] | None = None
    data_dir: HostPath | None = None
    config_file: HostPath | None = None
    listen_address: str | None = None
    user: UserName | None = None
    mysql: MysqlConnection | None = None  # settings read by the component's service definition
    scrape_uri: Url | None = None
    cluster: ClusterSettings | None = None
    storage: StorageSettings | None = None

    @field_validator("listen_address")
    @classmethod
    def _ip_literal(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("listen_address must be an IP address such as 0.0.0.0 or 10.0.0.11") from None
        return value


class ComponentSpec(Strict):
    """One component entry of versions.yaml (also the shape of an environment's component override)."""

    strategy: Strategy | None = None
    version: VersionValue | None = None
    version_range: RangeValue | None = None
    github_repo: str | None = None
    fallback_version: VersionValue | None = None
    exclude: list[VersionValue] = Field(default_factory=list)
    include_prereleases: bool = False
    tag_prefix: str | None = Field(default=None, max_length=64)
    artifact: ArtifactTemplate | None = None
    checksums: ChecksumsTemplate | None = None
    download_url: DownloadTemplate | None = None
    artifact_urls: dict[VersionText, dict[Platform, Url]] = Field(default_factory=dict)
    arch_map: dict[str, Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,32}$")]] | None = None
    phase: str | None = Field(default=None, max_length=64)
    runtime: RuntimeSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _range_in_version(cls, data: Any) -> Any:
        """Seed 003 writes a range as `version: ">=3.0.0 <4.0.0"`: that is `version_range` (strategy range)."""
        if isinstance(data, dict) and data.get("version") is not None and _is_range(str(data["version"])):
            data = dict(data)
            rng = str(data.pop("version"))
            if data.get("version_range") not in (None, rng):
                raise ValueError(
                    f"version {rng!r} is a range and version_range says {data['version_range']!r}: keep one"
                )
            if data.setdefault("strategy", "range") != "range":
                raise ValueError(
                    f"version {rng!r} is a range, but strategy is {data['strategy']!r}: "
                    f'use strategy: range with version_range: "{rng}"'
                )
            data["version_range"] = rng
        return data

    @field_validator("version", "fallback_version", mode="before")
    @classmethod
    def _versions(cls, v: Any) -> Any:
        try:
            return None if v is None or isinstance(v, VersionValue) else VersionValue(str(v))
        except ValueError as exc:
            raise ValueError(f'{exc}; for a range write version_range: ">=3.0.0 <4.0.0" with strategy: range') from None

    @field_validator("exclude", mode="before")
    @classmethod
    def _exclude(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [i if isinstance(i, VersionValue) else VersionValue(str(i)) for i in v]
        return v

    @field_validator("github_repo")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        if v is not None and not REPO_RE.match(v):
            raise ValueError(f"github_repo {v!r} must be 'owner/name'")
        return v

    @field_validator("artifact_urls")
    @classmethod
    def _artifact_urls(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for per_platform in v.values():
            for url in per_platform.values():
                pathpolicy.check_filename(url.rsplit("/", 1)[-1], "the file name at the end of the URL")
        return v


class SeedRollbackSpec(Strict):
    """Seed 000's `global.safety.rollback` (maps to the policy's rollback retention and auto-rollback)."""

    auto_rollback_on_failure: bool | None = None
    retention_count: int | None = Field(default=None, ge=1, le=1000)
    retention_days: int | None = Field(default=None, ge=0, le=36500)


class SeedSafetySpec(Strict):
    """Seed 000's `global.safety` block in versions.yaml; each key overrides the same upgrade-policy.yaml setting."""

    compatibility_check: bool | None = None
    breaking_change_detection: bool | None = None
    security_advisory_check: bool | None = None
    require_checksum_verification: bool | None = None
    auto_upgrade: AutoUpgradeSpec | None = None
    rollback: SeedRollbackSpec | None = None


class GlobalSpec(Strict):
    default_strategy: Strategy = "latest"
    offline_mode: bool = False
    platforms: list[Platform] = Field(default_factory=lambda: ["linux-amd64"])
    safety: SeedSafetySpec | None = None

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one platform is needed, e.g. [linux-amd64]")
        return v


class EnvironmentSpec(Strict):
    default_strategy: Strategy | None = None
    offline_mode: bool | None = None
    platforms: list[Platform] | None = None
    current: dict[Name, VersionValue | None] = Field(default_factory=dict)  # null: stated not installed
    component_overrides: dict[Name, ComponentSpec] = Field(default_factory=dict)
    disabled_components: list[Name] = Field(default_factory=list)
    promote_from: Name | None = None  # take exactly the versions, artifacts and checksums of that environment's lock

    @field_validator("current", mode="before")
    @classmethod
    def _current(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for name in v:
                pathpolicy.check_name(str(name), "component")
            return {
                str(k): None if val is None or isinstance(val, VersionValue) else VersionValue(str(val))
                for k, val in v.items()
            }
        return v


class VersionsFile(Strict):
    global_: GlobalSpec = Field(default_factory=GlobalSpec, alias="global")
    components: dict[str, ComponentSpec]
    environments: dict[str, EnvironmentSpec] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("components", "environments")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            pathpolicy.check_name(name, "component/environment")
        return v
