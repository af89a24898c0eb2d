"""Whether a plan was checked against security advisories, and with what (or why not), for the lock and its
report: "Security fixes: none" only when advisories were checked, else "not checked" and why."""

from __future__ import annotations

from obsplan.compiler.config.policy import PolicyFile
from obsplan.compiler.intel.advisories import AdvisoryDB

from obsplan.lock.lockfile import AdvisoryScan


def advisory_scan(policy: PolicyFile, db: AdvisoryDB | None, osv_api: bool, offline: bool) -> AdvisoryScan:
    if not policy.safety.security_advisory_check:
        return AdvisoryScan(checked=False, detail="safety.security_advisory_check is false")
    if db is None and not osv_api:
        if not policy.osv_api.enabled:
            api = "the OSV API is off (osv_api.enabled: false)"
        else:
            api = "the OSV API is not queried offline" if offline else "the OSV API could not be used"
        return AdvisoryScan(
            checked=False,
            detail=f"no advisory data: the policy lists no `advisories:` (OSV records) and {api}",
        )
    read = []
    if db is not None:
        sources = sorted({r.source for r in db.records})
        read.append(f"{len(db.records)} OSV record(s) from {len(sources)} file(s)")
    if osv_api:
        read.append("the OSV API")
    return AdvisoryScan(checked=True, detail=" and ".join(read))
