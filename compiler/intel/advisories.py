"""The advisory database: OSV records merged into vulnerabilities, assessed against component *release* versions.

The record shape and its parsing live in osv_records.py; how a release meets an OSV range written in Go module
versions (policies/advisory-mappings.yaml) in advisory_versions.py.

* Records describing one vulnerability (linked by `id`/`aliases`) are merged; the primary id is the
  lexicographically smallest id among the merged *records* (GHSA-… sorts before GO-…).
* `withdrawn` records are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from obsplan.compiler.intel.advisory_versions import (
    AdvisoryMappings,
    EmbeddedPin,
    ModuleMapping,
    combine,
    entry_affects,
    entry_fixes,
    load_mappings,
    release_to_module,
)
from obsplan.compiler.intel.osv_records import OsvAffected, OsvRecord, record_from_json
from pydantic import BaseModel, ConfigDict

import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version


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
                    results.append(entry_affects(release, entry, mapping))
            if entry.package in cm.embeds:
                results.append(self._embedded_affects(component, entry, release))
        return combine(results)

    def _embedded_affects(self, component: str, entry: OsvAffected, release: Version) -> bool | None:
        pin = self._pin(component, entry.package, release)
        if pin is None:
            return None
        if pin.module_version is None:
            return False
        lib = ModuleMapping(path=entry.package)
        return entry_affects(pin.module_version.version, entry, lib)

    def _pin(self, component: str, module: str, release: Version) -> EmbeddedPin | None:
        for table in self.mappings.embedded:
            if table.component == component and table.module == module:
                for pin in table.pins:
                    if pin.releases.contains(release):
                        return pin
        return None

    def _fixes(self, component: str, vuln: Vulnerability) -> list[Version]:
        cm = self.mappings.components[component]
        fixes: set[Version] = set()
        for entry in vuln.affected:
            for mapping in cm.modules:
                if entry.package == mapping.path:
                    fixes.update(entry_fixes(entry, mapping))
            if entry.package in cm.embeds:
                # An exporter release fixes a library flaw when it embeds a fixed library version.
                for table in self.mappings.embedded:
                    if table.component == component and table.module == entry.package:
                        for pin in table.pins:
                            clauses = pin.releases.range.clauses
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
            try:  # size, depth, UTF-8 and duplicate keys checked: one line, exit 2 (obsplan/safeio/jsonload.py)
                data = jsonload.read(f, "advisory file", hint="advisory files must be OSV JSON records")
            except OSError as exc:
                raise ObsplanError(f"cannot read advisory file: {exc.strerror}", file=str(f)) from None
            records.append(record_from_json(data, f.name))
    return AdvisoryDB(records, mappings or load_mappings())


# --- api.osv.dev ----------------------------------------------------------------------------------------------


def osv_queries(mappings: AdvisoryMappings, component: str, release: Version) -> list[dict[str, Any]]:
    """Bodies for `POST https://api.osv.dev/v1/query`, one per module path that holds this release."""
    bodies = []
    for m in mappings.components[component].modules:
        if m.releases is None or m.releases.contains(release):
            version = f"v{release_to_module(release, m)}"
            bodies.append({"package": {"name": m.path, "ecosystem": "Go"}, "version": version})
    return bodies
