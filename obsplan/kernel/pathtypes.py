"""The path policy (obsplan/kernel/pathpolicy.py) as pydantic types, shared by the configuration and the lock models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

import obsplan.kernel.pathpolicy as pp


def _text(value: object) -> object:
    """Numbers written without quotes (version: 1.10) are read as text; other types fail the str check."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _artifact(value: str) -> str:
    pp.check_template(value, "artifact")  # without {version}/{tag} the download URL must place it (catalog.py)
    pp.check_filename(pp.sample_render(value, "artifact"), "artifact file name")
    return value


def _download_url(value: str) -> str:
    pp.check_template(value, "download_url")
    pp.check_url(pp.sample_render(value, "download_url"), "download_url")
    return value


def _checksums(value: str) -> str:
    pp.check_template(value, "checksums")
    rendered = pp.sample_render(value, "checksums")
    if "{url}" in value:
        pp.check_url(rendered, "checksums URL")
    else:
        pp.check_filename(rendered, "checksums file name")
    return value


Name = Annotated[str, AfterValidator(pp.check_name)]
VersionText = Annotated[str, BeforeValidator(_text), AfterValidator(pp.check_version_text)]
BinaryName = Annotated[str, AfterValidator(pp.check_binary_name)]
FileName = Annotated[str, AfterValidator(pp.check_filename)]
HostPath = Annotated[str, AfterValidator(pp.check_host_path)]
Glob = Annotated[str, AfterValidator(pp.check_glob)]
Url = Annotated[str, AfterValidator(pp.check_url)]
RelFile = Annotated[str, AfterValidator(pp.check_relative_file)]
IsoDate = Annotated[
    str, BeforeValidator(lambda v: v.isoformat() if hasattr(v, "isoformat") else v), AfterValidator(pp.check_date)
]
Platform = Annotated[str, AfterValidator(lambda v: v if pp.PLATFORM_RE.match(v) else pp.platform_error(v))]
ArtifactTemplate = Annotated[str, AfterValidator(_artifact)]
DownloadTemplate = Annotated[str, AfterValidator(_download_url)]
ChecksumsTemplate = Annotated[str, AfterValidator(_checksums)]
