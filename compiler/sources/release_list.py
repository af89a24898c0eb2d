"""`list-versions`: which component a name means, and its tags as release rows (filtered, newest first).

Pure: the tags come in from the sources stage (`compiler/run.py`'s `release_data`), the rows go out to the CLI."""

from __future__ import annotations

from typing import TypedDict

from obsplan.compiler.config.catalog import ComponentDef, builtin_definitions, resolve_definition
from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.specs_stage import effective_specs
from obsplan.compiler.config.versions_file import ComponentSpec

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version, go_module_twin, parse_tag

Tag = tuple[str, str | None, bool]
"""(tag, published date, marked pre-release upstream), as the release sources give them."""


class ReleaseRow(TypedDict):
    tag: str
    version: str | None  # None: a tag that names no release of this component (shown with --all)
    date: str | None
    prerelease: bool


def component_definition(component: str, inputs: Inputs | None, env: str) -> tuple[ComponentDef, bool]:
    """The definition `component` names (versions.yaml's entry for `env` over the built-in one, when there is a
    configuration) and whether the environment is offline. Unknown components are bad input."""
    builtins = builtin_definitions()
    spec, env_offline = ComponentSpec(), False
    if inputs is not None:
        specs, _, env_offline = effective_specs(inputs, env)
        if component in specs:
            spec = specs[component][0]
    if component not in builtins and spec == ComponentSpec():
        raise ObsplanError(f"unknown component {component!r}", hint=f"built-in: {', '.join(sorted(builtins))}")
    return resolve_definition(component, spec, builtins, "versions.yaml"), env_offline


def release_rows(tags: list[Tag], defn: ComponentDef, show_all: bool) -> list[ReleaseRow]:
    """The component's releases, newest first; pre-releases and tags naming no release only with `show_all`
    (those last)."""
    rows: list[ReleaseRow] = []
    for tag, published, pre in tags:
        v = parse_tag(tag, defn.tag_prefix)
        if v is None or (defn.ignore_go_module_twins and go_module_twin(v)):
            if show_all:
                rows.append({"tag": tag, "version": None, "date": published, "prerelease": pre})
            continue
        if (pre or v.is_prerelease) and not show_all:
            continue
        rows.append({"tag": tag, "version": str(v), "date": published, "prerelease": pre or v.is_prerelease})
    rows.sort(key=_newest_first, reverse=True)
    return rows


def _newest_first(row: ReleaseRow) -> tuple[bool, Version | None]:
    return row["version"] is not None, Version.parse(row["version"]) if row["version"] else None
