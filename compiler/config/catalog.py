"""Built-in component definitions (policies/components.yaml) merged with a user's versions.yaml entry."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

from obsplan.compiler.config.model_errors import parse_yaml, validate
from obsplan.compiler.config.versions_file import ComponentSpec
from pydantic import BaseModel, ConfigDict, Field

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.version_types import VersionValue
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Artifact, ComponentLock, Runtime, Step
from obsplan.lock.service_def import SETTINGS, ServiceDef


class ComponentDef(BaseModel):
    """Everything the compiler knows about fetching and checking one component's releases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    github_repo: str
    artifact: str
    checksums: str | None
    checksum_style: Literal["file", "sidecar"] = "file"
    download_url: str
    arch_map: dict[str, str] = Field(default_factory=dict)
    artifact_urls: dict[str, dict[str, str]] = Field(default_factory=dict)
    legacy_url_max_version: VersionValue | None = None
    downloads_api: str | None = None  # grafana.com product: versions, package URLs and sha256 from its API
    min_version: VersionValue | None = None
    platforms_supported: list[str] | None = None
    ignore_go_module_twins: bool = False
    tag_prefix: str = ""
    phase: str | None = None
    runtime: Runtime

    def asset_name(self, version: Version, platform: str) -> str:
        os_, arch = platform.split("-", 1)
        return self.artifact.format(
            name=self.name, version=str(version), tag=f"v{version}", os=os_, arch=self.arch_map.get(arch, arch)
        )

    def artifact_for(self, version: Version, tag: str, platform: str) -> tuple[str, str] | None:
        """(url, filename) of the artifact for a platform, or None when obsplan cannot know its URL."""
        if self.platforms_supported is not None and platform not in self.platforms_supported:
            return None
        explicit = self.artifact_urls.get(str(version), {}).get(platform)
        if explicit:
            return explicit, explicit.rsplit("/", 1)[-1]
        if self.legacy_url_max_version and version > self.legacy_url_max_version:
            return None
        asset = self.asset_name(version, platform)
        url = self.download_url.format(repo=self.github_repo, tag=tag, asset=asset, version=str(version))
        return url, asset

    def checksum_name(self, version: Version) -> str | None:
        """The checksum list's file name in the release (None: no list, or a side-car beside each artifact)."""
        if self.checksums is None or self.sidecar_url("", version) is not None:
            return None
        project = self.artifact.split("_{version}")[0] if "_{version}" in self.artifact else self.name
        return self.checksums.format(project=project, version=str(version), name=self.name)

    def sidecar_url(self, url: str, version: Version) -> str | None:
        """The checksum file beside the artifact at `url` (`checksums: "{url}.sha256"`), else None."""
        if self.checksums is None or "{url}" not in self.checksums:
            return f"{url}.sha256" if self.checksum_style == "sidecar" else None
        project = self.artifact.split("_{version}")[0] if "_{version}" in self.artifact else self.name
        return self.checksums.format(url=url, project=project, version=str(version), name=self.name)

    def archive_format(self, filename: str) -> Literal["tar.gz", "zip", "binary"]:
        if filename.endswith((".tar.gz", ".tgz")):
            return "tar.gz"
        if filename.endswith(".zip"):
            return "zip"
        return "binary"


def downloads_products() -> dict[str, str]:
    """GitHub repository → grafana.com product, for the built-in components released through its downloads API."""
    return {
        str(d["github_repo"]): str(d["downloads_api"])
        for d in _builtin_definitions().values()
        if d.get("downloads_api")
    }


def builtin_definitions() -> dict[str, dict[str, object]]:
    return dict(_builtin_definitions())


@cache
def _builtin_definitions() -> dict[str, dict[str, object]]:
    text = resources.files("obsplan.policies").joinpath("components.yaml").read_text()
    return dict(parse_yaml(text, "policies/components.yaml")["components"])


class ServicesFile(BaseModel):
    """policies/services.yaml: per-component service definitions, and `defaults` for any other component."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: ServiceDef
    services: dict[str, ServiceDef]


@cache
def service_definitions() -> ServicesFile:
    text = resources.files("obsplan.policies").joinpath("services.yaml").read_text()
    return validate(ServicesFile, parse_yaml(text, "policies/services.yaml"), "policies/services.yaml")


def service_for(name: str) -> ServiceDef:
    catalog = service_definitions()
    return catalog.services.get(name, catalog.defaults)


def _check_settings(name: str, runtime: dict[str, object], service: ServiceDef, file: str) -> None:
    """A runtime setting the component's service does not read would do nothing: refuse it."""
    for key in SETTINGS:
        if runtime.get(key) is not None and key not in service.settings:
            readers = sorted(n for n, d in service_definitions().services.items() if key in d.settings)
            raise ObsplanError(
                f"{name} does not use runtime.{key} (read by: {', '.join(readers)})",
                file=file,
                key=f"components.{name}.runtime.{key}",
                hint="remove it",
            )


def host_settings(components: dict[str, ComponentLock], steps: list[Step]) -> list[Step]:
    """Steps of a component whose definition needs a setting versions.yaml does not give (`requires`, e.g.
    mysqld_exporter's runtime.mysql) are planned, not refused: the lock says so (`settings_from_host`) and apply
    takes the setting from the running installation, refusing only that step when there is none."""
    out = []
    for s in steps:
        runtime = components[s.component].runtime
        missing = [key for key in runtime.service.requires if getattr(runtime, key) is None]
        out.append(s.model_copy(update={"settings_from_host": missing}) if missing else s)
    return out


def resolve_definition(
    name: str, spec: ComponentSpec, builtins: dict[str, dict[str, object]], file: str
) -> ComponentDef:
    """Merge a versions.yaml entry over the built-in definition (or build a custom component from it)."""
    base: dict[str, object] = dict(builtins.get(name, {}))
    is_builtin = name in builtins
    user = spec.model_dump(exclude_unset=True, exclude_none=True)
    for key in ("github_repo", "artifact", "checksums", "download_url", "arch_map", "tag_prefix", "phase"):
        if key in user:
            base[key] = user[key]
    if spec.artifact_urls:
        merged = dict(base.get("artifact_urls", {}))  # type: ignore[call-overload]
        merged.update(spec.artifact_urls)
        base["artifact_urls"] = merged
    if not is_builtin:
        missing = [k for k in ("github_repo", "artifact") if k not in base]
        if missing:
            raise ObsplanError(
                f"obsplan has no built-in definition for {name!r}, so it needs {' and '.join(missing)}",
                file=file,
                key=f"components.{name}",
                hint='e.g. github_repo: prometheus/blackbox_exporter, artifact: "blackbox_exporter-{version}.{os}-{arch}.tar.gz"',
            )
        base.setdefault("download_url", "https://github.com/{repo}/releases/download/{tag}/{asset}")
        base.setdefault("checksums", None)
    _check_release_placed(name, str(base.get("artifact", "")), str(base.get("download_url", "")), file)
    runtime = dict(base.get("runtime", {}))  # type: ignore[call-overload]
    if spec.runtime:
        runtime.update(spec.runtime.model_dump(exclude_none=True))
    if not is_builtin:
        runtime.setdefault("service_binary", name)
        runtime.setdefault("binaries", {name: f"*{name}"})
        runtime.setdefault("health_path", "/metrics")
        runtime.setdefault("build_info_metric", f"{name}_build_info")
        if "port" not in runtime:
            raise ObsplanError(
                f"custom component {name!r} needs the port it listens on",
                file=file,
                key=f"components.{name}.runtime.port",
                hint="add runtime: {port: 9115}",
            )
    runtime["service"] = service_for(name)
    _check_settings(name, runtime, runtime["service"], file)  # type: ignore[arg-type]
    base["runtime"] = Runtime(**runtime)
    base.pop("<<", None)
    return ComponentDef(name=name, **base)  # type: ignore[arg-type]


def _check_release_placed(name: str, artifact: str, download_url: str, file: str) -> None:
    """An artifact name without {version} or {tag} is the same file name in every release: only a download URL
    with {tag} (or {version}) tells the releases apart."""
    if any(f in artifact for f in ("{version}", "{tag}")) or any(f in download_url for f in ("{version}", "{tag}")):
        return
    raise ObsplanError(
        f"artifact {artifact!r} names no version and download_url {download_url!r} places it under no release tag",
        file=file,
        key=f"components.{name}.artifact",
        hint='add {version} to artifact, or {tag} to download_url (e.g. "https://github.com/{repo}/releases/download/{tag}/{asset}")',
    )


def make_artifact(
    defn: ComponentDef, url: str, filename: str, sha256: str | None, checksum_url: str | None, origin: str | None = None
) -> Artifact:
    return Artifact(
        checksum_origin=origin if sha256 else None,
        url=url,
        filename=filename,
        format=defn.archive_format(filename),
        sha256=sha256,
        checksum_url=checksum_url,
        checksum_status="verified_upstream" if sha256 else "missing",
    )
