"""Pick each component's target version from its release data, strategy and the matrix's `max_version` rules.

Selection is by version precedence over *all* releases, never by date or GitHub's "latest" marker: release
lines are patched in parallel, so a backport is often the newest release by date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from obsplan.compiler.config.catalog import ComponentDef
from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.config.versions_file import ComponentSpec, Strategy
from obsplan.compiler.sources.releases import Release, ReleaseData, candidates, is_stable

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Reason


@dataclass
class Candidates:
    """The releases a component may move to, and why the others were set aside."""

    usable: dict[Version, Release]
    waiting: dict[Version, str] = field(default_factory=dict)  # too young: version → date it becomes eligible


@dataclass
class Target:
    version: Version
    strategy: Strategy
    reasons: list[Reason]
    warnings: list[str] = field(default_factory=list)


def usable_candidates(
    defn: ComponentDef,
    spec: ComponentSpec,
    data: ReleaseData,
    *,
    platforms: list[str],
    matrix: MatrixFile,
    today: date,
    min_age_days: int,
) -> Candidates:
    """Stable (unless asked), not excluded, not barred by a `max_version` rule, old enough, with artifacts."""
    found = candidates(data, tag_prefix=defn.tag_prefix, ignore_twins=defn.ignore_go_module_twins)
    excluded = {e.version for e in spec.exclude}
    barred = [r.versions for r in matrix.rules if r.kind == "max_version" and r.component == defn.name and r.versions]
    floor = defn.min_version.version if defn.min_version else None
    out = Candidates(usable={})
    for v, rel in found.items():
        if not spec.include_prereleases and not is_stable(v, rel):
            continue
        if v in excluded or any(r.contains(v) for r in barred) or (floor and v < floor):
            continue
        if not has_artifacts(defn, v, rel, platforms):
            continue
        if min_age_days and rel.published_at:
            eligible = date.fromisoformat(rel.published_at) + timedelta(days=min_age_days)
            if eligible > today:
                out.waiting[v] = eligible.isoformat()
                continue
        out.usable[v] = rel
    return out


def has_artifacts(defn: ComponentDef, v: Version, rel: Release, platforms: list[str]) -> bool:
    if rel.downloads_api:  # a downloads API names every platform's package on request
        return True
    for p in platforms:
        art = defn.artifact_for(v, rel.tag, p)
        if art is None:
            return False
        if rel.assets is not None and on_github(defn) and art[1] not in rel.assets:
            return False
    return True


def on_github(defn: ComponentDef) -> bool:
    return "github.com/{repo}/releases/download" in defn.download_url


def choose(
    defn: ComponentDef,
    spec: ComponentSpec,
    strategy: Strategy,
    cands: Candidates,
    *,
    current: Version | None,
    kept: Version | None,
    matrix: MatrixFile,
    today: date,
    file: str,
) -> Target:
    """Apply the strategy. Never a downgrade unless pinned; a lock's version is kept while it still fits."""
    if strategy == "pinned":
        return _pinned(defn, spec, cands.usable, current, kept, file)
    if strategy == "range":
        pick, why = _newest_in_range(defn, spec, cands.usable, file)
    elif strategy == "lts":
        pick, why = _newest_lts(defn, cands.usable, matrix, today, file)
    else:
        pick, why = _newest(defn, cands.usable, file)
    if kept is not None and kept != pick and kept in cands.usable and _fits(kept, strategy, spec, pick):
        detail = f"{kept} from the previous lock still satisfies {strategy}; {pick} is available (use --upgrade)"
        return Target(kept, strategy, [Reason(code="kept_from_lock", detail=detail)])
    if current is not None and pick < current:
        return Target(
            current, strategy, [Reason(code="no_downgrade", detail=f"installed {current} is newer than {pick}; kept")]
        )
    return Target(pick, strategy, [why])


def _pinned(
    defn: ComponentDef,
    spec: ComponentSpec,
    usable: dict[Version, Release],
    current: Version | None,
    kept: Version | None,
    file: str,
) -> Target:
    """Pinned without an explicit version holds what is there: the locked version, else the installed one, else
    fallback_version ("production: pinned" means nothing moves unless someone says so)."""
    key = f"components.{defn.name}"
    implicit = kept or current or (spec.fallback_version.version if spec.fallback_version else None)
    v = spec.version.version if spec.version else implicit
    if v is None:
        raise ObsplanError(
            "strategy 'pinned' needs a version",
            file=file,
            key=f"{key}.version",
            hint='add version: "X.Y.Z" (in the component or the environment override)',
        )
    if v in spec.exclude:
        raise ObsplanError(
            f"pinned version {v} is also excluded",
            file=file,
            key=f"{key}.exclude",
            hint="remove it from exclude or pin another version",
        )
    reasons = [Reason(code="pinned", detail=f"pinned to {v}" + ("" if spec.version else " (held: no version given)"))]
    if usable and v not in usable:
        raise ObsplanError(
            f"pinned version {v} is not a usable release of {defn.github_repo}",
            file=file,
            key=f"{key}.version",
            hint=f"pick one of the newest: {', '.join(str(x) for x in sorted(usable)[-5:])}",
        )
    if current and v < current:
        reasons.append(Reason(code="downgrade", detail=f"pinned {v} is older than the installed {current}"))
    return Target(v, "pinned", reasons)


def _newest_in_range(
    defn: ComponentDef, spec: ComponentSpec, usable: dict[Version, Release], file: str
) -> tuple[Version, Reason]:
    key = f"components.{defn.name}.version_range"
    if spec.version_range is None:
        raise ObsplanError(
            "strategy 'range' needs version_range",
            file=file,
            key=key,
            hint='add version_range: ">=2.9.0 <3.0.0" (seed 003\'s version: ">=2.9.0 <3.0.0" means the same)',
        )
    rng = spec.version_range.range
    pool = [v for v in usable if rng.contains(v)]
    if not pool:
        raise ObsplanError(
            f"version_range {rng} matches no usable release",
            file=file,
            key=key,
            hint=f"newest known release is {max(usable)}" if usable else "check github_repo",
        )
    return max(pool), Reason(code="newest_in_range", detail=f"newest stable release in {rng}")


def _newest_lts(
    defn: ComponentDef, usable: dict[Version, Release], matrix: MatrixFile, today: date, file: str
) -> tuple[Version, Reason]:
    """The newest patch of the newest LTS line (the matrix's support data) whose support has not ended."""
    key = f"components.{defn.name}.strategy"
    lines = [s for s in matrix.support.get(defn.name, []) if s.lts]
    if not lines:
        raise ObsplanError(
            f"the matrix lists no LTS lines for {defn.name}",
            file=file,
            key=key,
            hint="use latest or range, or add support lines with lts: true to a user matrix",
        )
    live = [s for s in lines if s.end is None or date.fromisoformat(s.end) >= today]
    if not live:
        raise ObsplanError(
            f"every LTS line of {defn.name} has ended",
            file=file,
            key=key,
            hint="use latest, or add the current LTS line to a user matrix",
        )
    best = max(live, key=lambda s: s.line_start)
    pool = [v for v in usable if v.line() == best.line]
    if not pool:
        raise ObsplanError(
            f"no usable release in LTS line {best.line}",
            file=file,
            key=key,
            hint="refresh release data or use latest",
        )
    detail = f"newest patch of LTS line {best.line} (supported until {best.end})"
    return max(pool), Reason(code="lts_line", detail=detail)


def _newest(defn: ComponentDef, usable: dict[Version, Release], file: str) -> tuple[Version, Reason]:
    if not usable:
        raise ObsplanError(
            f"no usable release of {defn.github_repo}",
            file=file,
            key=f"components.{defn.name}",
            hint="check github_repo, exclude and platforms",
        )
    return max(usable), Reason(code="newest_stable", detail="newest stable release by version precedence")


def _fits(v: Version, strategy: Strategy, spec: ComponentSpec, pick: Version) -> bool:
    if strategy == "range":
        return spec.version_range is not None and spec.version_range.contains(v)
    if strategy == "lts":
        return v.line() == pick.line()
    return True
