"""`obsplan doctor`: check the state database, `current` links, version directories, exposed binaries and units
against each other; `--repair` moves a broken database aside (kept, never deleted) and rebuilds
`installed_components` from host facts (the `current` links, the floors of the last applied lock).

Broken installs (a deleted version directory, a dangling link) are reported, not patched: such a step is no
longer up to date, so the next `obsplan apply` of the lock reinstalls it. A binary replaced by hand is reported
(drift, as `status` shows it) until `obsplan adopt` or an apply accepts it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import obsplan.executor.host.drift as drift
from obsplan.executor.host.integrity import install_problems
from obsplan.executor.host.layout import APPLIED_LOCK, Layout
from obsplan.executor.services.service_manager import ServiceManager
from obsplan.executor.state.state_db import StateDB
from obsplan.executor.state.state_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import version_or_none
from obsplan.lock.lockfile import Lock, load_lock
from obsplan.safeio.sqlite_check import move_aside, problem


@dataclass
class Finding:
    check: str  # database | lock | current_link | install | drift | unit | state
    component: str | None
    problem: str
    repaired: str | None = None


@dataclass
class DoctorReport:
    root: str
    findings: list[Finding] = field(default_factory=list)
    moved_aside: str | None = None

    @property
    def healthy(self) -> bool:
        return all(f.repaired for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "healthy": self.healthy,
            "moved_aside": self.moved_aside,
            "findings": [asdict(f) for f in self.findings],
        }


def applied_lock(layout: Layout, report: DoctorReport) -> Lock | None:
    path = layout.state_dir / APPLIED_LOCK
    if not path.exists():
        return None
    try:
        return load_lock(path)
    except ObsplanError as exc:
        report.findings.append(Finding("lock", None, f"the last applied lock cannot be used: {exc}"))
        return None


def components(layout: Layout, lock: Lock | None, db: StateDB | None) -> list[str]:
    opt = layout.host("/opt/obsplan")
    on_disk = {d.name for d in opt.iterdir() if d.is_dir() and not d.name.startswith(".")} if opt.is_dir() else set()
    recorded = {r["component"] for r in db.all_installed()} if db is not None else set()
    return sorted(on_disk | recorded | set(lock.components if lock else ()))


def check(layout: Layout, services: ServiceManager, repair: bool = False) -> DoctorReport:
    """Run every check; with `repair`, move a broken database aside and rebuild it, and resync versions."""
    report = DoctorReport(str(layout.root))
    lock = applied_lock(layout, report)
    wrong = problem(layout.db_path, SCHEMA, MIGRATIONS, SCHEMA_VERSION)
    if wrong is not None:
        finding = Finding("database", None, f"{layout.db_path} {wrong}")
        report.findings.append(finding)
        if not repair:
            return report
        report.moved_aside = move_aside(layout.db_path)
        finding.repaired = f"moved aside to {report.moved_aside}; installed versions rebuilt from the host"
    if not layout.db_path.exists() and not repair:
        db = None
    else:
        db = StateDB(layout.db_path) if repair else StateDB.open_for_reading(layout.db_path)
    try:
        for c in components(layout, lock, db):
            check_component(layout, services, lock, db, c, report, repair)
    finally:
        if db is not None:
            db.close()
    return report


def check_component(
    layout: Layout,
    services: ServiceManager,
    lock: Lock | None,
    db: StateDB | None,
    c: str,
    report: DoctorReport,
    repair: bool,
) -> None:
    host = layout.current_version(c)
    comp = lock.components.get(c) if lock else None
    if comp is not None:
        for p in install_problems(layout, c, comp.runtime, host):
            report.findings.append(Finding("install", c, f"{p}; the next 'obsplan apply' reinstalls {c} {host}"))
        changed = drift.detect(c, comp.runtime, layout)  # as `status` says it
        if changed is not None:
            hint = f"accept it with 'obsplan adopt {c} --root {layout.root}', or apply a lock that allows it"
            report.findings.append(Finding("drift", c, f"{changed}; {hint}"))
    elif host is not None and not layout.version_dir(c, host).is_dir():
        report.findings.append(Finding("install", c, f"version directory {layout.version_dir(c, host)} is missing"))
    unit = services.definition_path(c)
    if host is not None and not unit.is_file():
        report.findings.append(Finding("unit", c, f"{c} {host} is installed but its unit {unit} is missing"))
    if host is None and unit.is_file():
        report.findings.append(Finding("unit", c, f"unit {unit} exists but {layout.current_link(c)} does not"))
    row = db.installed(c) if db is not None else None
    recorded = row["version"] if row is not None else None
    if recorded != host:
        finding = Finding(
            "state", c, f"state says {c} {recorded or 'not installed'}, the host has {host or 'nothing'} (current link)"
        )
        if not (report.moved_aside and recorded is None):  # a rebuilt database is not a finding of its own
            report.findings.append(finding)
        if repair and db is not None:
            floor = rebuilt_floor(lock, c, host, row["floor"] if row is not None else None)
            db.set_installed(
                c, host, previous=recorded, floor=floor, source="doctor:current_link", last_result="rebuilt"
            )
            finding.repaired = f"recorded {c} {host or 'not installed'} (floor {floor or '-'})"


def rebuilt_floor(lock: Lock | None, c: str, host: str | None, known: str | None) -> str | None:
    """The highest rollback floor the applied lock sets for the steps up to the host's version (and a known one)."""
    floors = [known] if known else []
    chain = [s for s in lock.plan.steps if s.component == c] if lock is not None else []
    reached = [i for i, s in enumerate(chain) if s.to_version == host]
    if reached:
        floors += [s.rollback_floor for s in chain[: reached[0] + 1] if s.rollback_floor]
    parsed = [(v, f) for f in floors if (v := version_or_none(f)) is not None]
    return max(parsed)[1] if parsed else None
