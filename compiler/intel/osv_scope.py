"""Which versions the OSV API is asked about before targets are chosen: the installed one, the newest usable,
the too-young ones (a security fix may skip the wait), and the newest release of each required-hop line."""

from __future__ import annotations

from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.intel.advisories import AdvisoryDB
from obsplan.compiler.intel.osv_api import OsvClient
from obsplan.compiler.resolve.fromstate import FromState
from obsplan.compiler.resolve.pick_target import Candidates

from obsplan.kernel.versions import Version


async def with_osv_records(
    osv: OsvClient | None,
    advisories: AdvisoryDB | None,
    states: dict[str, FromState],
    pools: dict[str, Candidates],
    matrix: MatrixFile,
) -> tuple[AdvisoryDB | None, dict[str, list[str]]]:
    """The advisory database with the API's records for those versions, and component → failed queries."""
    if osv is None:
        return advisories, {}
    wanted = {name: osv_versions(name, st.version, pools.get(name), matrix) for name, st in states.items()}
    records = await osv.records(wanted)
    base = advisories or AdvisoryDB([], osv.mappings)
    return base.with_records(records), osv.failures


def osv_versions(name: str, current: Version | None, cands: Candidates | None, matrix: MatrixFile) -> set[Version]:
    versions: set[Version] = {current} if current else set()
    if cands is None:
        return versions
    if cands.usable:
        versions.add(max(cands.usable))
    versions |= set(cands.waiting)
    for rule in matrix.rules:
        if rule.kind == "required_hop" and rule.component == name:
            line = [v for v in cands.usable if v.line() == rule.via_line]
            if line:
                versions.add(max(line))
    return versions
