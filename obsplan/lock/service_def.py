"""Service definitions as data: how a component is started, which files and settings it needs, and how
its version is read, per version range.

The definitions live in `policies/services.yaml`; the compiler copies a component's definition into its
lock entry (`runtime.service`) next to the component's settings from versions.yaml `runtime:` (`mysql`,
`scrape_uri`, `cluster`, `storage`), and the executor renders them (`executor/services/service_render.py`) into the
argv, environment and files of one version, for systemd units and supervisord programs alike.
Only paths of secrets are data here: secret values are read on the host when the service is rendered.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from obsplan.kernel.pathtypes import HostPath, Url
from obsplan.kernel.version_types import VersionValue
from obsplan.kernel.versions import Version

_MODE_RE = re.compile(r"^0[0-7]{3}$")
_DURATION_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _without_none(data: Any, *keys: str) -> Any:
    for key in keys:
        if isinstance(data, dict) and data.get(key) is None:
            data.pop(key, None)
    return data


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Arg(Strict):
    """One argv item rendered only when `when` (a Jinja expression) is true; with `each`, once per item."""

    arg: str
    when: str | None = None
    each: str | None = Field(default=None, description="Jinja expression giving a list; `item` is each element")


class ServiceFile(Strict):
    """A file the service needs (configuration, credentials), written before it starts."""

    name: str = Field(description="templates refer to its rendered host path as files.<name>")
    path: str = Field(description="host path (under --root); may use component, config_file, data_dir")
    content: str = Field(description="Jinja template")
    mode: str = "0644"
    when: str | None = None
    keep_existing: bool = Field(default=False, description="write only when no file exists (a starter config)")

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if not _MODE_RE.match(value):
            raise ValueError(f"mode {value!r} must be an octal string such as '0600'")
        return value


ArgItem = str | Arg


class Check(Strict):
    """The target version's own verdict on the configuration the service runs with, asked before a step
    switches to it (and before a manual rollback goes back to it): exit 0 accepts, anything else refuses."""

    tool: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="a binary of the release being checked (runtime.binaries name, e.g. promtool, amtool)",
    )
    argv: list[ArgItem] = Field(
        min_length=1, description="templates: `tool` is the tool's path in that release, config_file the host path"
    )
    timeout_seconds: int = Field(default=60, ge=1, le=600)


class Rehearsal(Strict):
    """How a one-way step (one that sets a rollback floor) is tried before its switch, in `safe` mode or with
    --rehearse: the target started on a free loopback port against a disposable copy of the data directory
    and a copy of the configuration without the keys that reach out (scraping, rules, alerting, remote write);
    it must become ready and answer a query over a series the running version holds."""

    strip: list[str] = Field(description="top-level configuration keys removed from the rehearsal's copy")
    immutable_marker: str = Field(
        default="meta.json",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="a data_dir subdirectory holding this file is immutable (a TSDB block): hard-linked, not copied",
    )
    skip: list[str] = Field(default_factory=list, description="top-level data_dir entries not copied (lock files)")
    ready_timeout_seconds: int = Field(default=120, ge=1, le=3600)


class Variant(Strict):
    """What differs for versions in [from, until): each field given replaces the base definition's."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    from_: VersionValue | None = Field(default=None, alias="from")
    until: VersionValue | None = None
    argv: list[ArgItem] | None = None
    env: dict[str, str] | None = None
    files: list[ServiceFile] | None = None
    build_info_metric: str | None = None
    check: Check | None = None
    note: str = ""

    @model_serializer(mode="wrap")
    def _omit_no_check(self, handler: Any) -> Any:
        return _without_none(handler(self), "check")

    def matches(self, version: str) -> bool:
        try:
            v = Version.parse(version)
        except ValueError:
            return self.until is None  # an unparseable version is treated as the newest
        return (self.from_ is None or v >= self.from_.version) and (self.until is None or v < self.until.version)


class ServiceDef(Strict):
    """How one component runs; `versions` lists the version-conditional differences."""

    argv: list[ArgItem]
    env: dict[str, str] = Field(default_factory=dict)
    files: list[ServiceFile] = Field(default_factory=list)
    if_exists: dict[str, str] = Field(
        default_factory=dict, description="variable → host path; the variable is that path when the file exists"
    )
    build_info_metric: str | None = None
    version_patterns: list[str] = Field(
        default_factory=list,
        description="regexes (group 1: the version) for `--version` output that is not the prometheus/common format",
    )
    reload_signal: str | None = None
    check: Check | None = Field(
        default=None, description="the release's own configuration checker; null: nothing to check (no config)"
    )
    rehearsal: Rehearsal | None = Field(default=None, description="null: one-way steps are not rehearsed")
    settings: list[str] = Field(default_factory=list, description="the runtime settings it reads")
    requires: list[str] = Field(default_factory=list, description="settings without which it cannot start")
    versions: list[Variant] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _omit_no_check(self, handler: Any) -> Any:
        """Without a checker or rehearsal the fields are left out, so older locks keep their hash."""
        return _without_none(handler(self), "check", "rehearsal")

    @model_validator(mode="after")
    def _requires_are_settings(self) -> ServiceDef:
        unknown = sorted(set(self.requires) - set(self.settings))
        if unknown:
            raise ValueError(f"requires {unknown} that are not in settings {self.settings}")
        return self

    def for_version(self, version: str) -> ServiceDef:
        """The definition with every matching variant's fields applied, in order."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude={"versions"})
        for variant in self.versions:
            if variant.matches(version):
                fields = variant.model_dump(exclude_none=True, exclude={"from_", "until", "note"})
                data.update({k: getattr(variant, k) for k in fields})
        return ServiceDef.model_validate(data)

    def all_files(self) -> list[ServiceFile]:
        """Every file any version declares (what a checkpoint backs up, what a switch may remove)."""
        seen: dict[str, ServiceFile] = {f.name: f for f in self.files}
        for variant in self.versions:
            seen.update({f.name: f for f in variant.files or []})
        return list(seen.values())

    @classmethod
    def generic(cls) -> ServiceDef:
        """An ordinary exporter: `--web.listen-address` (and its web config when one exists)."""
        return cls(
            argv=[
                "{{ binary }}",
                "--web.listen-address={{ listen }}",
                Arg(arg="--web.config.file={{ web_config }}", when="web_config"),
            ],
            if_exists={"web_config": "/etc/{{ component }}/web.yml"},
        )


# ---------------------------------------------------------------- settings (versions.yaml runtime:)


class MysqlConnection(Strict):
    """mysqld_exporter's connection; the password stays in `password_file` on the host (read under --root)."""

    address: str = "127.0.0.1:3306"
    user: str = Field(min_length=1, max_length=80, pattern=r"^[^\s:@/]+$")
    password_file: HostPath

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"address {value!r} must be host:port, e.g. 127.0.0.1:3306")
        return value


class ClusterSettings(Strict):
    """Alertmanager's gossip cluster; without it clustering is disabled (`--cluster.listen-address=`)."""

    listen_address: str = "0.0.0.0:9094"
    advertise_address: str | None = None
    peers: list[str] = Field(default_factory=list)


class StorageSettings(Strict):
    """Retention of what a component stores in its data_dir: Alertmanager's silences and notification log
    (--data.retention), Prometheus' TSDB (--storage.tsdb.retention.time; --storage.tsdb.retention before 2.7)."""

    retention: str | None = Field(default=None, description="--data.retention, a Go duration such as 120h")

    @field_validator("retention")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION_RE.match(value):
            raise ValueError(f"retention {value!r} must be a duration such as 120h or 5d")
        return value


SETTINGS = ("mysql", "scrape_uri", "cluster", "storage")
UserName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]  # a Unix account name
ScrapeUri = Url
