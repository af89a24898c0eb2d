"""OSV advisories (osv.dev schema) evaluated against component *release* versions.

OSV names Go modules and module versions; obsplan plans releases. `policies/advisory-mappings.yaml` bridges the
two (module paths per component, the Prometheus `v0.3XX.Y` module scheme, exporter-toolkit pins embedded in
exporters). Pitfalls handled here, with examples from the vendored records (shared/advisories/README.md):

* SEMVER ranges are module versions and are compared in module space: release 3.14.0 is module v0.314.0, which
  is outside GO-2026-5264's re-opened `introduced: 1.0.0-rc.0` interval (that one holds the old v1/v2 tags).
* Go vulndb `custom_ranges` hold release numbers and replace the entry's SEMVER range (all Grafana GO records).
* A bound that is a Go pseudo-version (`0.0.0-2025...`, `1.9.2-0.2025...`) names a commit, not a release: the
  interval cannot be evaluated, so a version outside every evaluable interval is `None` (unknown), not False.
* `last_affected` is an inclusive upper bound; `versions` lists count as affected too; `withdrawn` records are
  skipped and counted; `database_specific` fields are ignored for logic.
* Grafana `+security-NN` re-releases order after their base (obsplan.versions), so 11.0.6 is affected by
  GO-2024-3215 and 11.0.6+security-01 is not.
* Records describing one vulnerability (linked by `id`/`aliases`) are merged; the primary id is the
  lexicographically smallest id among the merged *records* (GHSA-… sorts before GO-…).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import semver
from pydantic import BaseModel, ConfigDict, ValidationError

from obsplan import jsonload
from obsplan.errors import ObsplanError
from obsplan.lockfile import AdvisoryId, AdvisorySeverity
from obsplan.versions import Version, VersionRange

from .inputs import read_policy_yaml

_PSEUDO = re.compile(r"\d{14}-[0-9a-f]{12}$")
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


class OsvEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["introduced", "fixed", "last_affected", "limit"]
    version: str


class OsvRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    events: list[OsvEvent]


class OsvAffected(BaseModel):
    """One `affected[]` entry, reduced to what the evaluation uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str
    ecosystem: str
    ranges: list[OsvRange] = []
    versions: list[str] = []
    custom_ranges: list[OsvRange] = []


class OsvRecord(BaseModel):
    """The fields the evaluation uses; ids and severity in the shape the lock records (refused here, naming the
    file, rather than when the lock is written)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: AdvisoryId
    aliases: list[AdvisoryId] = []
    summary: str | None = None
    severity: AdvisorySeverity | None = None
    withdrawn: str | None = None
    affected: list[OsvAffected] = []
    source: str


class Vulnerability(BaseModel):
    """One vulnerability: the records that describe it, merged through their ids and aliases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    aliases: list[str]
    summary: str | None
    severity: str | None
    source: list[str]
    affected: list[OsvAffected]


class Assessment(BaseModel):
    """What one vulnerability means for an upgrade. `None` = unknown (or no current version)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    aliases: list[str]
    summary: str | None
    severity: str | None
    affects_current: bool | None
    affects_target: bool | None
    fixed_in: str | None
    affected_hops: list[str]
    source: list[str]


class ModuleMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    scheme: Literal["identity", "prometheus"] = "identity"
    releases: str | None = None
    ecosystem_ranges: Literal["module", "release"] = "module"


class ComponentMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modules: list[ModuleMapping] = []
    embeds: list[str] = []


class EmbeddedPin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    releases: str
    module_version: str | None


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


def _entry_affects(release: Version, entry: OsvAffected, mapping: ModuleMapping) -> bool | None:
    if mapping.releases and not VersionRange.parse(mapping.releases).contains(release):
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


def _entry_fixes(entry: OsvAffected, mapping: ModuleMapping) -> list[Version]:
    """The release numbers that end an affected interval of this entry (pseudo-version fixes are dropped)."""
    pairs = _range_checks(entry, mapping)
    fixes = []
    for rng, space in pairs:
        for _, hi, inclusive in _intervals(rng):
            fix = space.fix_release(hi) if hi is not None and not inclusive else None
            if fix is not None:
                fixes.append(fix)
    return [f for f in fixes if mapping.releases is None or VersionRange.parse(mapping.releases).contains(f)]


def _combine(results: Iterable[bool | None]) -> bool | None:
    """Any True wins; otherwise any unknown makes the answer unknown."""
    out: bool | None = False
    for r in results:
        if r:
            return True
        if r is None:
            out = None
    return out


# --- loading --------------------------------------------------------------------------------------------------


def _record_from_json(data: Any, source: str) -> OsvRecord:
    """Keep the OSV fields the evaluation uses; the schema has many more and keeps growing."""
    try:
        affected = []
        for a in data.get("affected", []):
            custom = (a.get("ecosystem_specific") or {}).get("custom_ranges", [])
            affected.append(
                OsvAffected(
                    package=a["package"]["name"],
                    ecosystem=a["package"].get("ecosystem", ""),
                    ranges=[_range(r) for r in a.get("ranges", []) if r.get("type") in ("SEMVER", "ECOSYSTEM")],
                    versions=a.get("versions", []),
                    custom_ranges=[_range(r) for r in custom],
                )
            )
        severity = (data.get("database_specific") or {}).get("severity")
        if severity is None and data.get("severity"):
            severity = data["severity"][0].get("score")
        return OsvRecord(
            id=data["id"],
            aliases=data.get("aliases") or [],
            summary=data.get("summary"),
            severity=severity,
            withdrawn=data.get("withdrawn"),
            affected=affected,
            source=source,
        )
    except ValidationError as exc:
        err = exc.errors()[0]  # the field as this module reads it, so no JSON key is claimed
        field = ".".join(str(p) for p in err["loc"])
        raise ObsplanError(f"not an OSV record ({field}: {err['msg']})", file=source) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ObsplanError(f"not an OSV record ({type(exc).__name__}: {exc})", file=source) from None


def _range(raw: dict[str, Any]) -> OsvRange:
    events = [OsvEvent(kind=k, version=str(v)) for ev in raw["events"] for k, v in ev.items() if k in _EVENT_KINDS]
    return OsvRange(type=raw["type"], events=events)


class AdvisoryDB:
    """Merged, de-duplicated vulnerabilities plus the mapping of components to Go modules."""

    def __init__(self, records: Iterable[OsvRecord], mappings: AdvisoryMappings) -> None:
        records = list(records)
        self.records = records
        self.mappings = mappings
        self.withdrawn = sorted(r.id for r in records if r.withdrawn)
        self.vulnerabilities = _merge([r for r in records if not r.withdrawn])

    def with_records(self, extra: Iterable[OsvRecord]) -> AdvisoryDB:
        """A new database with more records (e.g. from the OSV API), merged and de-duplicated again."""
        known = {(r.id, r.source) for r in self.records}
        return AdvisoryDB(self.records + [r for r in extra if (r.id, r.source) not in known], self.mappings)

    def for_component(self, component: str) -> list[Vulnerability]:
        """Vulnerabilities naming one of the component's modules or a library it embeds, sorted by id."""
        cm = self.mappings.components.get(component)
        if cm is None:
            return []
        paths = {m.path for m in cm.modules} | set(cm.embeds)
        return [v for v in self.vulnerabilities if any(a.package in paths for a in v.affected)]

    def affects(self, component: str, vuln: Vulnerability, release: Version) -> bool | None:
        """True/False, or None when the records cannot say (pseudo-version bounds, unknown embedded version)."""
        cm = self.mappings.components[component]
        results: list[bool | None] = []
        for entry in vuln.affected:
            for mapping in cm.modules:
                if entry.package == mapping.path:
                    results.append(_entry_affects(release, entry, mapping))
            if entry.package in cm.embeds:
                results.append(self._embedded_affects(component, entry, release))
        return _combine(results)

    def _embedded_affects(self, component: str, entry: OsvAffected, release: Version) -> bool | None:
        pin = self._pin(component, entry.package, release)
        if pin is None:
            return None
        if pin.module_version is None:
            return False
        lib = ModuleMapping(path=entry.package)
        return _entry_affects(Version.parse(pin.module_version), entry, lib)

    def _pin(self, component: str, module: str, release: Version) -> EmbeddedPin | None:
        for table in self.mappings.embedded:
            if table.component == component and table.module == module:
                for pin in table.pins:
                    if VersionRange.parse(pin.releases).contains(release):
                        return pin
        return None

    def _fixes(self, component: str, vuln: Vulnerability) -> list[Version]:
        cm = self.mappings.components[component]
        fixes: set[Version] = set()
        for entry in vuln.affected:
            for mapping in cm.modules:
                if entry.package == mapping.path:
                    fixes.update(_entry_fixes(entry, mapping))
            if entry.package in cm.embeds:
                # An exporter release fixes a library flaw when it embeds a fixed library version.
                for table in self.mappings.embedded:
                    if table.component == component and table.module == entry.package:
                        for pin in table.pins:
                            clauses = VersionRange.parse(pin.releases).clauses
                            if len(clauses) == 1 and clauses[0][0] == "==":
                                release = clauses[0][1]
                                if self._embedded_affects(component, entry, release) is False:
                                    fixes.add(release)
        return sorted(fixes)

    def assess(
        self, component: str, current: Version | None, target: Version, hops: Sequence[Version] = ()
    ) -> list[Assessment]:
        """Every vulnerability of the component, evaluated at current, target and the intermediate hops.

        `fixed_in` is left out when no evaluated version is (or may be) affected.
        """
        out = []
        for vuln in self.for_component(component):
            at_current = None if current is None else self.affects(component, vuln, current)
            at_target = self.affects(component, vuln, target)
            at_hops = [str(h) for h in sorted(hops) if self.affects(component, vuln, h)]
            fixes = [f for f in self._fixes(component, vuln) if current is None or f > current]
            relevant = at_current is not False or at_target is not False or at_hops
            out.append(
                Assessment(
                    id=vuln.id,
                    aliases=vuln.aliases,
                    summary=vuln.summary,
                    severity=vuln.severity,
                    affects_current=at_current,
                    affects_target=at_target,
                    fixed_in=_pick_fix(fixes, target) if relevant else None,
                    affected_hops=at_hops,
                    source=vuln.source,
                )
            )
        return out


def _pick_fix(fixes: list[Version], target: Version) -> str | None:
    """The smallest fix on the target's release line, else on the nearest line (ties go to the newer line)."""
    if not fixes:
        return None
    same = [f for f in fixes if f.line() == target.line()]
    if same:
        return str(min(same))

    def distance(f: Version) -> tuple[int, int, Version]:
        gap = abs((f.major - target.major) * 1000 + f.minor - target.minor)
        return (gap, 0 if f > target else 1, f)

    return str(min(fixes, key=distance))


def _merge(records: list[OsvRecord]) -> list[Vulnerability]:
    """Group records sharing any identifier (id or alias), one Vulnerability per group, sorted by id."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in records:
        for alias in r.aliases:
            parent[find(alias)] = find(r.id)
    groups: dict[str, list[OsvRecord]] = {}
    for r in sorted(records, key=lambda r: (r.id, r.source)):
        groups.setdefault(find(r.id), []).append(r)
    out = []
    for members in groups.values():
        primary = min(r.id for r in members)
        names = {r.id for r in members} | {a for r in members for a in r.aliases}
        lead = next(r for r in members if r.id == primary)
        out.append(
            Vulnerability(
                id=primary,
                aliases=sorted(names - {primary}),
                summary=lead.summary or next((r.summary for r in members if r.summary), None),
                severity=next((r.severity for r in members if r.severity), None),
                source=sorted({r.source for r in members}),
                affected=[a for r in members for a in r.affected],
            )
        )
    return sorted(out, key=lambda v: v.id)


def load_advisories(paths: Iterable[str | Path], mappings: AdvisoryMappings | None = None) -> AdvisoryDB:
    """Load OSV JSON files, or every `*.json` below a directory (recursive, sorted); bad JSON names the file."""
    records = []
    for p in paths:
        path = Path(p)
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        for f in files:
            try:  # size, depth, UTF-8 and duplicate keys checked: one line, exit 2 (obsplan/jsonload.py)
                data = jsonload.read(f, "advisory file", hint="advisory files must be OSV JSON records")
            except OSError as exc:
                raise ObsplanError(f"cannot read advisory file: {exc.strerror}", file=str(f)) from None
            records.append(_record_from_json(data, f.name))
    return AdvisoryDB(records, mappings or load_mappings())


# --- api.osv.dev ----------------------------------------------------------------------------------------------


def osv_queries(mappings: AdvisoryMappings, component: str, release: Version) -> list[dict[str, Any]]:
    """Bodies for `POST https://api.osv.dev/v1/query`, one per module path that holds this release."""
    bodies = []
    for m in mappings.components[component].modules:
        if m.releases is None or VersionRange.parse(m.releases).contains(release):
            version = f"v{release_to_module(release, m)}"
            bodies.append({"package": {"name": m.path, "ecosystem": "Go"}, "version": version})
    return bodies


def parse_osv_response(payload: Any, source: str = "api.osv.dev") -> list[OsvRecord]:
    """Records of a `/v1/query` response (`{"vulns": [...]}`; an empty result is `{}`)."""
    if not isinstance(payload, dict):
        raise ObsplanError("unexpected OSV response (not a JSON object)", file=source)
    return [_record_from_json(v, f"{source}:{v.get('id', '?')}") for v in payload.get("vulns", [])]
