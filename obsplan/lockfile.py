"""The lock: the reviewed hand-off from the compiler to the executor.

A lock is JSON with sorted keys and a stable order, so compiling twice gives identical bytes and a PR diff
shows exactly what changed. `content_sha256` covers every other byte of meaning, so a lock edited by hand
after it was generated is detected by `obsplan plan --check` and refused by `obsplan apply`.
The executor imports only this module from the compiler.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    model_serializer,
)

from obsplan import jsonload
from obsplan import pathpolicy as pp
from obsplan.errors import ObsplanError
from obsplan.lockcheck import check_lock
from obsplan.pathtypes import BinaryName, FileName, Glob, HostPath, Name, Platform, Url, VersionText
from obsplan.service_def import ClusterSettings, MysqlConnection, ServiceDef, StorageSettings, UserName

FORMAT_VERSION = 1

Risk = Literal["low", "medium", "high"]
SourceKind = Literal["github", "grafana_com", "cache", "snapshot", "fallback_version", "module_manifest", "lock"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Artifact(Strict):
    """One downloadable archive for one platform."""

    url: Url
    filename: FileName
    format: Literal["tar.gz", "zip", "binary"]
    sha256: str | None = Field(description="lowercase hex; null when the upstream checksum could not be fetched")
    checksum_url: Url | None = None
    checksum_status: Literal["verified_upstream", "missing"] = "verified_upstream"
    checksum_origin: str | None = Field(
        default=None,
        description="where a sha256 learned before came from (another lock of the plans folder, the snapshot); "
        "null: fetched from upstream for this lock",
    )
    size: int | None = Field(
        default=None,
        ge=0,
        description="bytes of the artifact when upstream states it: a download is stopped beyond it (absent: "
        "unknown, the archive limit `max_total_bytes` caps it)",
    )

    @model_serializer(mode="wrap")
    def _without_unknown_size(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`size` is written only when known, so locks written before it existed keep their content hash."""
        data: dict[str, Any] = handler(self)
        if data.get("size") is None:
            data.pop("size", None)
        return data


class Runtime(Strict):
    """What the executor needs to install, run and verify one component, copied from the catalog."""

    binaries: dict[BinaryName, Glob] = Field(description="exposed name → glob of the file inside the extracted archive")
    service_binary: BinaryName
    port: int = Field(ge=1, le=65535)
    health_path: str = Field(pattern=r"^/[^\s]{0,255}$")
    build_info_metric: str | None = None
    version_args: list[str] = Field(default_factory=lambda: ["--version"])
    data_dir: HostPath | None = None
    config_file: HostPath | None = None
    listen_address: str | None = Field(
        default=None, description="IP the service binds; null: all interfaces (the upstream default)"
    )
    service: ServiceDef = Field(default_factory=ServiceDef.generic, description="policies/services.yaml")
    user: UserName | None = Field(default=None, description="user the service runs as; null: the manager's (root)")
    mysql: MysqlConnection | None = None
    scrape_uri: Url | None = None
    cluster: ClusterSettings | None = None
    storage: StorageSettings | None = None

    def build_info_metric_for(self, version: str) -> str | None:
        """The build_info metric `version` serves (e.g. nginx exporter 0.x: nginxexporter_build_info)."""
        return self.service.for_version(version).build_info_metric or self.build_info_metric

    def probe_host(self) -> str:
        """Where health checks connect: loopback unless the service binds one specific address."""
        if self.listen_address in (None, "0.0.0.0", "::"):
            return "127.0.0.1"
        return self.listen_address


class Reason(Strict):
    code: str
    detail: str


class SourceInfo(Strict):
    kind: SourceKind
    as_of: str | None = Field(description="date (YYYY-MM-DD) of the release data that won, null if unknown")
    detail: str = ""


class FromRefusal(Strict):
    """Host versions this step must not start from (apply-time binding when the host is off the plan's path)."""

    rule: str = Field(description="the matrix rule id, or `no_downgrade`")
    versions: str = Field(description="version range: a host inside it may not go straight to the step's target")
    reason: str


BreakingMarker = Literal[
    "[CHANGE]", "BREAKING CHANGES section", "BREAKING", "breaking change", "!:", "flag rename", "removed", "curated"
]
"""The detection rule that flagged a changelog entry as breaking (compiler/changelog.py, `MARK_*`)."""

EntryVersion = Annotated[str, AfterValidator(pp.check_version_text)]
"""A normalised release version (`3.0.0`, `11.0.0-preview`, `10.4.19+security-01`); unlike `VersionText` a
number is not read as text: in a breaking or advisory entry it is a wrong type."""

AdvisoryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:+-]{1,120}$")]
"""An OSV identifier, `<DB>-<ENTRYID>` (GO-2024-2629, GHSA-5mxf-42f5-j782, CVE-2024-1442): one word, since the
report cuts an advisory's id at the first space."""

AdvisorySeverity = Annotated[str, StringConstraints(pattern=r"^[!-{}~]{1,200}$")]
"""The GitHub advisory level (LOW, MODERATE, HIGH, CRITICAL), else the record's first OSV severity score (a CVSS
vector): one word of printable ASCII, without the `|` that would break the report's advisory table."""

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class BreakingChange(Strict):
    """One breaking entry of an upstream changelog, release body or the curated list, in a step's range."""

    model_config = ConfigDict(strict=True)

    version: EntryVersion = Field(description="the release whose section holds the entry")
    text: NonEmpty = Field(description="the entry's text (a parsed one on one line, links reduced to their text)")
    source: NonEmpty = Field(
        description="where it was read: `repo file: section heading`, `GitHub release TAG: …` or a curated document"
    )
    marker: BreakingMarker = Field(description="the rule that flagged it as breaking (compiler/changelog.py)")


class AdvisoryEntry(Strict):
    """One security advisory (merged OSV records) that affects a component's installed, target or hop version."""

    model_config = ConfigDict(strict=True)

    id: AdvisoryId = Field(description="the smallest id among the merged records (GHSA-… sorts before GO-…)")
    aliases: list[AdvisoryId] = Field(description="every other id and alias of the merged records, sorted")
    summary: str | None = Field(description="the records' summary; null: none gives one")
    severity: AdvisorySeverity | None = Field(description="null: no record gives one")
    affects_current: bool | None = Field(description="the installed version is affected; null: unknown")
    affects_target: bool | None = Field(description="the target version is affected; null: unknown")
    fixed_in: EntryVersion | None = Field(
        description="the first fixed release on the target's line (else the nearest line); null: none known, or "
        "no evaluated version is affected"
    )
    affected_hops: list[EntryVersion] = Field(description="intermediate hop versions that are affected")
    source: list[NonEmpty] = Field(min_length=1, description="the OSV files (or API queries) the records came from")


class Step(Strict):
    id: str = Field(min_length=1, max_length=200)
    component: Name
    from_version: str | None
    to_version: str
    phase: str
    requires: list[str]
    risk: Risk
    reasons: list[Reason]
    artifacts: dict[Platform, Artifact]
    rollback_floor: str | None = None
    breaking_changes: list[BreakingChange] = Field(default_factory=list)
    priority: Literal["normal", "security"] = "normal"
    approval: str | None = Field(default=None, description="why the step may run under --auto; null: pending")
    refuse_from: list[FromRefusal] | None = Field(
        default=None,
        description="when the host runs another version than `from_version`, the step still runs from it unless "
        "one of these ranges holds it (a required hop skipped, a rollback floor crossed, a downgrade); null (a lock "
        "written without the matrix's word on it): only the plan's own path is accepted",
    )
    soak_seconds: int | None = Field(
        default=None, description="from_version must have served (verified) this long first; absent: no soak"
    )

    @model_serializer(mode="wrap")
    def _omit_no_soak(self, handler: Any) -> Any:
        """Without a soak the field is left out, so locks written before soak existed keep their bytes and hash."""
        data = handler(self)
        if isinstance(data, dict) and data.get("soak_seconds") is None:
            data.pop("soak_seconds", None)
        return data


class Plan(Strict):
    phases: list[str]
    steps: list[Step]


class ComponentLock(Strict):
    version: VersionText
    current: str | None = Field(description="the installed version the plan assumed (from-state)")
    stated_current: str | None = Field(
        default=None,
        description="versions.yaml's `current:` for this component when the lock was compiled ('none': stated not "
        "installed; null: nothing stated), so a re-plan can tell a changed statement from an unchanged one",
    )
    strategy: str
    github_repo: str | None
    source: SourceInfo
    artifacts: dict[Platform, Artifact]
    runtime: Runtime
    warnings: list[str] = Field(default_factory=list)
    advisories: list[AdvisoryEntry] = Field(default_factory=list)


class ArchiveLimits(Strict):
    """Ceilings checked while extracting, before the disk fills (defaults fit every real release, with room)."""

    max_total_bytes: int = Field(default=4 * 1024**3, ge=1, description="uncompressed bytes of one archive")
    max_members: int = Field(default=20_000, ge=1)
    max_ratio: float = Field(default=200.0, gt=1, description="uncompressed / compressed size")


class HostPolicy(Strict):
    """The policy values the executor applies on the host, copied from upgrade-policy.yaml by the compiler."""

    keep_versions: int = Field(default=3, ge=1, description="versions and rollback points kept per component")
    retention_days: int = Field(default=30, ge=0, description="older versions and used backups are pruned")
    auto_rollback_on_failure: bool = True
    require_checksum_verification: bool = Field(
        default=True,
        description="false: artifacts without a sha256 are installed with a warning, as --allow-unverified",
    )
    on_manual_change: Literal["skip", "reinstall"] = "skip"
    download_deadline_seconds: int = Field(default=900, ge=1, description="overall deadline per artifact")
    archive_limits: ArchiveLimits = Field(default_factory=ArchiveLimits)


class Lock(Strict):
    format_version: int
    obsplan_version: str
    environment: Name
    platforms: list[Platform]
    inputs: dict[str, str] = Field(description="input name → sha256 of its bytes")
    components: dict[Name, ComponentLock]
    plan: Plan
    host_policy: HostPolicy = Field(default_factory=HostPolicy)
    content_sha256: str = ""

    def body_digest(self) -> str:
        """sha256 of the canonical JSON of everything but `content_sha256`."""
        data = self.model_dump(mode="json", exclude={"content_sha256"})
        return hashlib.sha256(_canonical(data).encode()).hexdigest()

    def sealed(self) -> Lock:
        return self.model_copy(update={"content_sha256": self.body_digest()})

    def to_json(self) -> str:
        return _canonical(self.model_dump(mode="json"), indent=2) + "\n"


def _canonical(data: Any, indent: int | None = None) -> str:
    return json.dumps(
        data, sort_keys=True, indent=indent, ensure_ascii=False, separators=None if indent else (",", ":")
    )


def load_lock(path: Path, verify: bool = True) -> Lock:
    """Read and validate a lock; with `verify`, refuse a lock whose content hash or format version is off."""
    try:
        raw = jsonload.read(path, "lock", hint="regenerate it with 'obsplan plan'")
    except FileNotFoundError:
        raise ObsplanError("lock file not found", file=str(path), hint="run 'obsplan plan' first") from None
    return _validated(raw, str(path), verify)


def parse_lock(text: str | bytes, where: str, verify: bool = True) -> Lock:
    """`load_lock` for lock text read elsewhere (e.g. from git); `where` names it in errors."""
    data = text.encode() if isinstance(text, str) else text
    return _validated(jsonload.loads(data, where, "lock", hint="regenerate it with 'obsplan plan'"), where, verify)


def _validated(raw: Any, where: str, verify: bool) -> Lock:
    if isinstance(raw, dict) and raw.get("format_version") != FORMAT_VERSION:
        raise ObsplanError(
            f"lock format_version {raw.get('format_version')!r} is not supported (this obsplan reads {FORMAT_VERSION})",
            file=where,
            key="format_version",
            hint="regenerate the lock with this obsplan version",
        )
    try:
        lock = Lock.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ObsplanError(msg, file=where, key=key, hint="regenerate it with 'obsplan plan'") from None
    check_lock(lock, where)
    if verify and lock.content_sha256 != lock.body_digest():
        raise ObsplanError(
            "lock was edited after it was generated (content_sha256 does not match its content)",
            file=where,
            key="content_sha256",
            hint="re-run 'obsplan plan' and review the regenerated lock instead of editing it by hand",
        )
    return lock
