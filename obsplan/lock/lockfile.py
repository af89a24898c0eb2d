"""The lock: the reviewed hand-off from the compiler to the executor, and a lasting contract.

A lock is JSON with sorted keys and a stable order, so compiling twice gives identical bytes and a PR diff
shows exactly what changed. The executor imports only this module from the compiler.

Canonical form (defined here once, `canonical_json`): the parsed JSON document without its `content_sha256`
key, serialised with sorted keys, separators `,` and `:`, no whitespace, non-ASCII characters as themselves,
encoded as UTF-8. `content_sha256` is the sha256 of that form, computed over the document *as written*
(never over a re-serialisation by today's models), so a lock written by any earlier obsplan keeps its hash,
whitespace and key order carry no meaning, and a changed value anywhere is refused as edited.

Format versions (`obsplan/lock/formats.py`): `format_version` moves whenever a field is added, removed or
changes meaning; every format obsplan wrote is read (older ones into today's model, absent fields as that
version's table states); a newer format is refused naming both versions. See docs/lock-format.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)

import obsplan.kernel.pathpolicy as pp
from obsplan import __version__
from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.pathtypes import BinaryName, FileName, Glob, HostPath, Name, Platform, Url, VersionText
from obsplan.kernel.version_types import RangeValue
from obsplan.kernel.versions import Version, version_or_none
from obsplan.lock.formats import FORMAT_VERSION as FORMAT_VERSION  # the format this obsplan writes
from obsplan.lock.formats import Gap
from obsplan.lock.host_policy import ArchiveLimits as ArchiveLimits  # re-exported: part of the lock
from obsplan.lock.host_policy import HostPolicy as HostPolicy
from obsplan.lock.host_policy import PostVerify as PostVerify
from obsplan.lock.host_policy import Strict as Strict
from obsplan.lock.service_def import ClusterSettings, MysqlConnection, ServiceDef, StorageSettings, UserName

Risk = Literal["low", "medium", "high"]
SourceKind = Literal["github", "grafana_com", "cache", "snapshot", "fallback_version", "module_manifest", "lock"]


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
    versions: RangeValue = Field(description="version range: a host inside it may not go straight to the step's target")
    reason: str


BreakingMarker = Literal[
    "[CHANGE]", "BREAKING CHANGES section", "BREAKING", "breaking change", "!:", "flag rename", "removed", "curated"
]
"""The detection rule that flagged a changelog entry as breaking (compiler/intel/breaking_changes.py, `MARK_*`)."""

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
    marker: BreakingMarker = Field(
        description="the rule that flagged it as breaking (compiler/intel/breaking_changes.py)"
    )


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
    settings_from_host: list[Literal["mysql", "scrape_uri", "cluster", "storage"]] = Field(
        default_factory=list,
        description="runtime settings the component's definition requires that versions.yaml does not give: apply "
        "takes them from the running installation (docs/credentials.md) and refuses this step when there is none; "
        "absent: none",
    )

    @model_serializer(mode="wrap")
    def _omit_no_soak(self, handler: Any) -> Any:
        """Without a soak (or settings from the host) the field is left out, so locks written before it existed
        keep their bytes and hash."""
        data = handler(self)
        if isinstance(data, dict) and data.get("soak_seconds") is None:
            data.pop("soak_seconds", None)
        if isinstance(data, dict) and not data.get("settings_from_host"):
            data.pop("settings_from_host", None)
        return data

    @cached_property
    def to_value(self) -> Version | None:
        """`to_version` parsed once (None when it is not a release version)."""
        return version_or_none(self.to_version)


class Plan(Strict):
    phases: list[str]
    steps: list[Step]
    phase_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="another name of a phase → the phase (`apply --phase core` runs phase `prometheus`); absent: none",
    )

    @model_serializer(mode="wrap")
    def _omit_no_aliases(self, handler: Any) -> Any:
        """Without aliases the field is left out, so locks written before aliases existed keep their bytes."""
        data = handler(self)
        if isinstance(data, dict) and not data.get("phase_aliases"):
            data.pop("phase_aliases", None)
        return data

    def phase_named(self, name: str) -> str | None:
        """The phase `name` names (itself or through an alias), None when the plan has no such phase."""
        if name in self.phases:
            return name
        target = self.phase_aliases.get(name)
        return target if target in self.phases else None


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

    @cached_property
    def version_value(self) -> Version | None:
        """`version` parsed once (None when it is not a release version); `current_value` likewise."""
        return version_or_none(self.version)

    @cached_property
    def current_value(self) -> Version | None:
        return version_or_none(self.current)


class AdvisoryScan(Strict):
    """Whether the plan was checked against security advisories, and with what (or why not)."""

    checked: bool
    detail: str = Field(description="the records read (checked), or why advisories were not checked")


@dataclass(frozen=True)
class ReadInfo:
    """How a lock was read: its written format, the hash of the document as written, what its format lacks."""

    format: int
    digest: str
    gaps: frozenset[Gap]


class Lock(Strict):
    format_version: int
    obsplan_version: str
    environment: Name
    platforms: list[Platform]
    inputs: dict[str, str] = Field(description="input name → sha256 of its bytes")
    components: dict[Name, ComponentLock]
    plan: Plan
    host_policy: HostPolicy = Field(default_factory=HostPolicy)
    advisory_scan: AdvisoryScan | None = Field(
        default=None, description="whether advisories were checked; absent: a lock that does not say"
    )
    content_sha256: str = ""
    _read: ReadInfo | None = PrivateAttr(default=None)

    @model_serializer(mode="wrap")
    def _omit_unrecorded(self, handler: Any) -> Any:
        """Without a recorded scan the field is left out, so older locks keep their bytes and hash."""
        data = handler(self)
        if isinstance(data, dict) and data.get("advisory_scan") is None:
            data.pop("advisory_scan", None)
        return data

    def body_digest(self) -> str:
        """The content hash of this lock as this obsplan writes it (`to_json`): of a lock read from a file,
        the hash of the document as written (`content_digest`), whatever today's models would write."""
        if self._read is not None:
            return self._read.digest
        return content_digest(self.model_dump(mode="json"))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Lock:
        """A copy; with `update` it is no longer the document as written: its digest is today's serialisation."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy._read = None
        return copy

    def is_intact(self) -> bool:
        """`content_sha256` matches the content (as written, for a lock read from a file)."""
        return self.content_sha256 == self.body_digest()

    def sealed(self) -> Lock:
        fresh = self.model_copy(update={"content_sha256": ""})
        return fresh.model_copy(update={"content_sha256": fresh.body_digest()})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def format_gaps(self) -> list[str]:
        """What this lock's (older) format lacks, e.g. `service definitions` (empty for a lock of today's format)."""
        return sorted(g.what for g in self._read.gaps) if self._read else []

    def require(self, command: str, where: str) -> None:
        """Refuse (exit 2) when the lock's format lacks something `command` needs, naming the format, the obsplan
        that wrote it and the fix; never "edited"."""
        gaps = sorted(g.what for g in (self._read.gaps if self._read else ()) if command in g.needed_by)
        if gaps:
            fmt = self.format_version
            raise ObsplanError(
                f"lock format {fmt} (written by obsplan {self.obsplan_version}) has no {' and no '.join(gaps)}, "
                f"which {command} needs",
                file=where,
                key="format_version",
                hint=f"run 'obsplan plan' again with this obsplan ({__version__}) to write a format "
                f"{FORMAT_VERSION} lock, review it, and {command} that",
            )


def canonical_json(document: Any) -> bytes:
    """The canonical form: sorted keys, separators `,` and `:`, characters as themselves, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_digest(document: dict[str, Any]) -> str:
    """`content_sha256` of a lock document: sha256 of the canonical form of everything but `content_sha256`."""
    return hashlib.sha256(canonical_json({k: v for k, v in document.items() if k != "content_sha256"})).hexdigest()


def load_lock(path: Path, verify: bool = True) -> Lock:
    """Read and validate a lock of any format this obsplan reads (`obsplan/lock/read.py`); with `verify`, refuse
    a lock whose content hash does not match the document as written."""
    from obsplan.lock.read import read_lock

    return read_lock(path, verify)


def parse_lock(text: str | bytes, where: str, verify: bool = True) -> Lock:
    """`load_lock` for lock bytes read elsewhere (from git, or read once for a signature check); `where` names
    it in errors."""
    from obsplan.lock.read import parse

    return parse(text.encode() if isinstance(text, str) else text, where, verify)
