"""Advisory version spaces: component releases against OSV ranges written in Go module versions.

OSV names Go modules and module versions; obsplan plans releases. `policies/advisory-mappings.yaml` bridges the
two (module paths per component, the Prometheus `v0.3XX.Y` module scheme, exporter-toolkit pins embedded in
exporters). Pitfalls handled here, with examples from the vendored records (shared/advisories/README.md):

* SEMVER ranges are module versions and are compared in module space: release 3.14.0 is module v0.314.0, which
  is outside GO-2026-5264's re-opened `introduced: 1.0.0-rc.0` interval (that one holds the old v1/v2 tags).
* Go vulndb `custom_ranges` hold release numbers and replace the entry's SEMVER range (all Grafana GO records).
* A bound that is a Go pseudo-version (`0.0.0-2025...`, `1.9.2-0.2025...`) names a commit, not a release: the
  interval cannot be evaluated, so a version outside every evaluable interval is `None` (unknown), not False.
* `last_affected` is an inclusive upper bound; `versions` lists count as affected too; `database_specific`
  fields are ignored for logic.
* Grafana `+security-NN` re-releases order after their base (obsplan.kernel.versions), so 11.0.6 is affected by
  GO-2024-3215 and 11.0.6+security-01 is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import semver
from obsplan.compiler.config.inputs import read_policy_yaml
from obsplan.compiler.intel.osv_records import OsvAffected, OsvRange
from pydantic import BaseModel, ConfigDict

from obsplan.kernel.version_types import RangeValue, VersionValue
from obsplan.kernel.versions import Version

_PSEUDO = re.compile(r"\d{14}-[0-9a-f]{12}$")


class ModuleMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    scheme: Literal["identity", "prometheus"] = "identity"
    releases: RangeValue | None = None
    ecosystem_ranges: Literal["module", "release"] = "module"


class ComponentMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modules: list[ModuleMapping] = []
    embeds: list[str] = []


class EmbeddedPin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    releases: RangeValue
    module_version: VersionValue | None


class EmbeddedTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    module: str
    component: str
    source: str
    pins: list[EmbeddedPin]


class AdvisoryMappings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    components: dict[str, ComponentMapping]
    embedded: list[EmbeddedTable] = []


def load_mappings(path: str | Path | None = None) -> AdvisoryMappings:
    """Read `policies/advisory-mappings.yaml` (the packaged copy when `path` is None)."""
    return read_policy_yaml(AdvisoryMappings, "advisory-mappings.yaml", path)


# --- version spaces -------------------------------------------------------------------------------------------


def _module_version(text: str) -> semver.Version | None:
    """A Go module version (`v` optional, `+incompatible` ignored by precedence); None if not semver."""
    try:
        return semver.Version.parse(text.removeprefix("v"))
    except ValueError:
        return None


def release_to_module(release: Version, mapping: ModuleMapping) -> semver.Version:
    """The module version a release is tagged as (3.11.2 → 0.311.2 under the Prometheus scheme)."""
    sem = release.sem.replace(build=None)
    if mapping.scheme == "prometheus":
        if sem.major == 3:
            return sem.replace(major=0, minor=300 + sem.minor)
        if sem.major == 2 and sem.minor >= 35:
            return sem.replace(major=0)
    return sem


def module_to_release(module_version: str, mapping: ModuleMapping) -> Version | None:
    """The release a module version denotes (0.311.3 → 3.11.3); None for pseudo-versions and unknown forms."""
    if _PSEUDO.search(module_version):
        return None
    sem = _module_version(module_version)
    if sem is None:
        return None
    if mapping.scheme == "prometheus" and sem.major == 0:
        sem = sem.replace(major=3, minor=sem.minor - 300) if sem.minor >= 300 else sem.replace(major=2)
    try:
        return Version.parse(str(sem.replace(build=None)))
    except ValueError:
        return None


def _release(text: str) -> Version | None:
    if _PSEUDO.search(text):
        return None
    try:
        return Version.parse(text)
    except ValueError:
        return None


class _Space:
    """Compares a release against range bounds written either as releases or as module versions."""

    def __init__(self, mapping: ModuleMapping, module_space: bool) -> None:
        self.mapping, self.module_space = mapping, module_space

    def bound(self, text: str) -> Version | semver.Version | None:
        if _PSEUDO.search(text):
            return None
        return _module_version(text) if self.module_space else _release(text)

    def point(self, release: Version) -> Version | semver.Version:
        return release_to_module(release, self.mapping) if self.module_space else release

    def fix_release(self, text: str) -> Version | None:
        return module_to_release(text, self.mapping) if self.module_space else _release(text)


def _intervals(rng: OsvRange) -> list[tuple[str | None, str | None, bool]]:
    """Walk the events in order: (introduced, end, end_inclusive); "0" and a missing end are unbounded."""
    out: list[tuple[str | None, str | None, bool]] = []
    start: str | None = None
    open_ = False
    for ev in rng.events:
        if ev.kind == "introduced":
            start, open_ = (None if ev.version == "0" else ev.version), True
        elif ev.kind in ("fixed", "last_affected") and open_:
            out.append((start, ev.version, ev.kind == "last_affected"))
            open_ = False
    if open_:
        out.append((start, None, False))
    return out


def _in_range(release: Version, rng: OsvRange, space: _Space) -> bool | None:
    result: bool | None = False
    point = space.point(release)
    for lo_text, hi_text, inclusive in _intervals(rng):
        lo = space.bound(lo_text) if lo_text is not None else None
        hi = space.bound(hi_text) if hi_text is not None else None
        if (lo_text is not None and lo is None) or (hi_text is not None and hi is None):
            result = None  # a pseudo-version bound names a commit, not a release
            continue
        above = lo is None or point >= lo  # type: ignore[operator]
        below = hi is None or (point <= hi if inclusive else point < hi)  # type: ignore[operator]
        if above and below:
            return True
    return result


def _range_checks(entry: OsvAffected, mapping: ModuleMapping) -> list[tuple[OsvRange, _Space]]:
    """Each range with the version space its bounds are written in: Go vulndb's custom ranges (release
    numbers) win over the module ranges when present."""
    if entry.custom_ranges:
        return [(r, _Space(mapping, module_space=False)) for r in entry.custom_ranges]
    return [
        (r, _Space(mapping, module_space=r.type == "SEMVER" or mapping.ecosystem_ranges == "module"))
        for r in entry.ranges
    ]


def entry_affects(release: Version, entry: OsvAffected, mapping: ModuleMapping) -> bool | None:
    if mapping.releases and not mapping.releases.contains(release):
        return False
    checks = _range_checks(entry, mapping)
    listed = _Space(mapping, module_space=mapping.ecosystem_ranges == "module")
    result: bool | None = any(listed.bound(v) == listed.point(release) for v in entry.versions) or False
    for rng, space in checks:
        hit = _in_range(release, rng, space)
        if hit:
            return True
        if hit is None:
            result = None
    return result


def entry_fixes(entry: OsvAffected, mapping: ModuleMapping) -> list[Version]:
    """The release numbers that end an affected interval of this entry (pseudo-version fixes are dropped)."""
    pairs = _range_checks(entry, mapping)
    fixes = []
    for rng, space in pairs:
        for _, hi, inclusive in _intervals(rng):
            fix = space.fix_release(hi) if hi is not None and not inclusive else None
            if fix is not None:
                fixes.append(fix)
    return [f for f in fixes if mapping.releases is None or mapping.releases.contains(f)]


def combine(results: Iterable[bool | None]) -> bool | None:
    """Any True wins; otherwise any unknown makes the answer unknown."""
    out: bool | None = False
    for r in results:
        if r:
            return True
        if r is None:
            out = None
    return out
