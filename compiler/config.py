"""The compiler's inputs: versions.yaml, upgrade-policy.yaml and the compatibility matrix.

Every file is parsed with PyYAML and validated by pydantic models that reject unknown keys; every problem
becomes one `ObsplanError` naming the file, the key and the fix.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from obsplan import pathpolicy
from obsplan.errors import ObsplanError
from obsplan.pathtypes import (
    ArtifactTemplate,
    BinaryName,
    ChecksumsTemplate,
    DownloadTemplate,
    Glob,
    HostPath,
    IsoDate,
    Name,
    Platform,
    RelFile,
    Url,
    VersionText,
)
from obsplan.service_def import ClusterSettings, MysqlConnection, StorageSettings, UserName
from obsplan.versions import Version, VersionRange

from . import yamlload
from .seed_safety import with_seed_safety
from .soak import parse_duration

Strategy = Literal["latest", "pinned", "range", "lts"]
Severity = Literal["mandatory", "overridable"]
Risk = Literal["low", "medium", "high"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
PLATFORM_RE = re.compile(r"^[a-z0-9]+-[a-z0-9]+$")
REPO_RE = re.compile(r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_version(v: str | None) -> str | None:
    if v is not None:
        Version.parse(str(v))
    return v


def _is_range(text: str) -> bool:
    """A version constraint (`>=3.0.0 <4.0.0`, `~3.6`), not one release version."""
    try:
        Version.parse(text)
        return False
    except ValueError:
        pass
    try:
        VersionRange.parse(text)
        return True
    except ValueError:
        return False


def _check_name(name: str, what: str) -> None:
    pathpolicy.check_name(name, what)


# ---------------------------------------------------------------- versions.yaml


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
    version: str | None = None
    version_range: str | None = None
    github_repo: str | None = None
    fallback_version: str | None = None
    exclude: list[str] = Field(default_factory=list)
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
            return _check_version(None if v is None else str(v))
        except ValueError as exc:
            raise ValueError(f'{exc}; for a range write version_range: ">=3.0.0 <4.0.0" with strategy: range') from None

    @field_validator("exclude", mode="before")
    @classmethod
    def _exclude(cls, v: Any) -> Any:
        if isinstance(v, list):
            for item in v:
                Version.parse(str(item))
            return [str(i) for i in v]
        return v

    @field_validator("version_range")
    @classmethod
    def _range(cls, v: str | None) -> str | None:
        if v is not None:
            VersionRange.parse(v)
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


class AutoUpgradeSpec(Strict):
    enabled: bool = False
    allowed_risk_levels: list[Risk] = Field(default_factory=lambda: list[Risk](["low"]))


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
    current: dict[Name, str | None] = Field(default_factory=dict)  # null: stated not installed
    component_overrides: dict[Name, ComponentSpec] = Field(default_factory=dict)
    disabled_components: list[Name] = Field(default_factory=list)
    promote_from: Name | None = None  # take exactly the versions, artifacts and checksums of that environment's lock

    @field_validator("current", mode="before")
    @classmethod
    def _current(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for name, ver in v.items():
                _check_name(str(name), "component")
                if ver is not None:
                    _check_version(str(ver))
            return {str(k): None if val is None else str(val) for k, val in v.items()}
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
            _check_name(name, "component/environment")
        return v


# ---------------------------------------------------------------- upgrade-policy.yaml


class SafetySpec(Strict):
    compatibility_check: bool = True  # false: overridable matrix rules warn instead of refusing
    breaking_change_detection: bool = True  # false: no changelog parsing (no breaking_changes, no risk raise)
    security_advisory_check: bool = True  # false: no advisory database, no OSV queries
    require_checksum_verification: bool = True  # false: apply may install artifacts the lock has no sha256 for
    rollback_on_failure: bool = True


class RollbackSpec(Strict):
    keep_versions: int = Field(default=3, ge=1, le=1000)
    retention_days: int = Field(default=30, ge=0, le=36500)


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


# ---------------------------------------------------------------- matrix


class Requirement(Strict):
    component: str
    version: str

    @field_validator("version")
    @classmethod
    def _range(cls, v: str) -> str:
        VersionRange.parse(v)
        return v


class Rule(Strict):
    id: str
    kind: Literal["required_hop", "rollback_floor", "requires", "max_version", "move_together", "breaking"]
    component: str | None = None
    components: list[str] = Field(default_factory=list)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    via_line: str | None = None
    floor: str | None = None
    requires: Requirement | None = None
    versions: str | None = None
    severity: Severity = "overridable"
    gate: bool = False
    reason: str
    hint: str | None = None
    source: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("from_", "to", "versions")
    @classmethod
    def _ranges(cls, v: str | None) -> str | None:
        if v is not None:
            VersionRange.parse(v)
        return v

    @field_validator("floor")
    @classmethod
    def _floor(cls, v: str | None) -> str | None:
        return _check_version(v)

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        need: dict[str, list[str]] = {
            "required_hop": ["component", "from_", "to", "via_line"],
            "rollback_floor": ["component", "to", "floor"],
            "requires": ["component", "to", "requires"],
            "max_version": ["component", "versions"],
            "move_together": ["components"],
            "breaking": ["component", "to"],
        }
        missing = [f.rstrip("_") for f in need[self.kind] if not getattr(self, f)]
        if missing:
            raise ValueError(f"rule {self.id!r} of kind {self.kind} needs: {', '.join(missing)}")
        return self

    def matches_from(self, v: Version | None) -> bool:
        if self.from_ is None:
            return True
        return v is not None and VersionRange.parse(self.from_).contains(v)

    def matches_to(self, v: Version) -> bool:
        return self.to is None or VersionRange.parse(self.to).contains(v)


class SupportLine(Strict):
    line: str = Field(max_length=32)
    start: IsoDate | None = None
    end: IsoDate | None = None
    lts: bool = False


class MatrixFile(Strict):
    rules: list[Rule] = Field(default_factory=list)
    support: dict[str, list[SupportLine]] = Field(default_factory=dict)


# ---------------------------------------------------------------- loading

M = TypeVar("M", bound=BaseModel)


def parse_yaml(text: str, name: str) -> Any:
    """One YAML document, parsed safely (size, depth and alias expansion capped: compiler/yamlload.py)."""
    return yamlload.load(text, name)


def validate(model: type[M], data: Any, name: str) -> M:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ObsplanError("expected a mapping at the top level", file=name, hint="see the README for the format")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        etype = err["type"]
        if etype == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
            raise ObsplanError(
                f"unknown key {loc[-1]!r}",
                file=name,
                key=key,
                hint=f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it",
            ) from None
        if etype == "literal_error":
            raise ObsplanError(
                f"invalid value {err.get('input')!r}", file=name, key=key, hint=f"expected {err['ctx']['expected']}"
            ) from None
        if etype == "missing":
            raise ObsplanError("required key is missing", file=name, key=key, hint="add it") from None
        msg = err["msg"].removeprefix("Value error, ")
        raise ObsplanError(msg, file=name, key=key or None, hint="fix the value") from None


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """The model class that owns the key at `loc` (a dict key or list index after a container field is skipped)."""
    current: Any = model
    skip_next = False
    for part in loc:
        if skip_next:
            skip_next = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        current, skip_next = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """`X | None` → X; `dict[str, X]` / `list[X]` → X, saying that a key or index comes next in an error location."""
    container = False
    while True:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        elif origin in (dict, list):
            tp, container = typing.get_args(tp)[-1], True
        else:
            return tp, container


def read_policy_yaml(model: type[M], filename: str, path: str | Path | None = None) -> M:
    """A YAML data file validated by `model`: the packaged `policies/<filename>`, or `path` when given."""
    if path is None:
        text, name = resources.files("obsplan.policies").joinpath(filename).read_text(), f"policies/{filename}"
    else:
        text, name = _read_text(Path(path)), str(path)
    return validate(model, parse_yaml(text, name), name)


@dataclass(frozen=True)
class Inputs:
    """Everything the compiler reads from disk, validated, with the sha256 of each file's bytes."""

    config_dir: Path
    versions: VersionsFile
    policy: PolicyFile
    matrix: MatrixFile
    digests: dict[str, str]
    module_versions: dict[str, str]


def _shipped(name: str) -> str:
    return resources.files("obsplan.policies").joinpath(name).read_text()


def load_inputs(config_dir: Path) -> Inputs:
    versions_path = config_dir / "versions.yaml"
    versions_text = _read_text(versions_path)
    versions = validate(VersionsFile, parse_yaml(versions_text, str(versions_path)), str(versions_path))
    digests = {"versions.yaml": _sha(versions_text)}

    policy_text = _shipped("upgrade-policy.yaml")
    policy_data = parse_yaml(policy_text, "policies/upgrade-policy.yaml (shipped)") or {}
    policy_path = config_dir / "upgrade-policy.yaml"
    if policy_path.exists():
        user_text = _read_text(policy_path)
        user = parse_yaml(user_text, str(policy_path)) or {}
        if not isinstance(user, dict):
            raise ObsplanError("expected a mapping at the top level", file=str(policy_path))
        validate(PolicyFile, user, str(policy_path))
        policy_data = {**policy_data, **user}
        digests["upgrade-policy.yaml"] = _sha(user_text)
    policy = validate(PolicyFile, policy_data, str(policy_path))

    matrix_text = _shipped("matrix.yaml")
    matrix = validate(MatrixFile, parse_yaml(matrix_text, "policies/matrix.yaml (shipped)"), "policies/matrix.yaml")
    digests["matrix.yaml (shipped)"] = _sha(matrix_text)
    user_matrix = (config_dir / policy.matrix_file) if policy.matrix_file else config_dir / "matrix.yaml"
    if policy.matrix_file and user_matrix.is_dir():
        raise ObsplanError("names a directory", file=str(policy_path), key="matrix_file", hint="name a YAML file")
    if user_matrix.exists():
        text = _read_text(user_matrix)
        extra = validate(MatrixFile, parse_yaml(text, str(user_matrix)), str(user_matrix))
        matrix = merge_matrix(matrix, extra)
        digests[user_matrix.name] = _sha(text)
    elif policy.matrix_file:
        raise ObsplanError(
            "matrix file not found",
            file=str(policy_path),
            key="matrix_file",
            hint=f"create {user_matrix} or remove the key",
        )

    modules: dict[str, str] = {}
    for manifest in sorted(config_dir.glob("modules/*/module.yaml")):
        text = _read_text(manifest)
        data = parse_yaml(text, str(manifest))
        # Module manifests belong to the shell-script era we replace: only `version` is read from them.
        if not isinstance(data, dict) or "version" not in data:
            raise ObsplanError(
                "module manifest has no 'version'", file=str(manifest), key="version", hint='add version: "X.Y.Z"'
            )
        try:
            modules[manifest.parent.name] = str(Version.parse(str(data["version"])))
        except ValueError as exc:
            raise ObsplanError(str(exc), file=str(manifest), key="version", hint="use X.Y.Z") from None
        digests[f"modules/{manifest.parent.name}/module.yaml"] = _sha(text)
    policy = with_seed_safety(policy, versions.global_.safety)
    _check_phases(policy, str(policy_path))
    return Inputs(config_dir, versions, policy, matrix, dict(sorted(digests.items())), modules)


def merge_matrix(base: MatrixFile, extra: MatrixFile) -> MatrixFile:
    rules = {r.id: r for r in base.rules}
    rules.update({r.id: r for r in extra.rules})
    support = {k: {s.line: s for s in v} for k, v in base.support.items()}
    for comp, lines in extra.support.items():
        support.setdefault(comp, {}).update({s.line: s for s in lines})
    return MatrixFile(rules=list(rules.values()), support={k: list(v.values()) for k, v in support.items()})


def _check_phases(policy: PolicyFile, name: str) -> None:
    seen: dict[str, str] = {}
    for i, phase in enumerate(policy.phases):
        for comp in phase.components:
            if comp in seen:
                raise ObsplanError(
                    f"component {comp!r} is in phases {seen[comp]!r} and {phase.name!r}",
                    file=name,
                    key=f"phases.{i}.components",
                    hint="list each component once",
                )
            seen[comp] = phase.name


def _read_text(path: Path) -> str:
    """A configuration file's text: UTF-8, size-capped; a directory or unreadable path is one line, exit 2."""
    try:
        if path.is_dir():
            raise ObsplanError("is a directory, not a file", file=str(path), hint="name a YAML file")
        with path.open("rb") as fh:
            data = fh.read(yamlload.MAX_BYTES + 1)
    except FileNotFoundError:
        raise ObsplanError("file not found", file=str(path), hint="check --config-dir") from None
    except OSError as exc:
        raise ObsplanError(f"cannot read: {exc.strerror or exc}", file=str(path), hint="check the path") from None
    return yamlload.decode(data, str(path))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
