"""`obsplan diff OLD NEW`: what differs between two locks (two environments, or a lock before and after a PR).

Per component: version, from-state, strategy, artifacts and checksums, advisories, warnings; per step: added,
removed, or changed (from-version, risk, approval, requires, artifacts). Where the release data came from
(`source github → cache`, its date) is noise in a review: shown only with `show_all`.
"""

from __future__ import annotations

from typing import Any

from obsplan.lock.lockfile import Artifact, ComponentLock, Lock, Step

# Kinds of change a reviewer sees by default; "source" only with --all.
KINDS = ("version", "current", "strategy", "artifact", "checksum", "advisory", "warning", "source")
HIDDEN_BY_DEFAULT = frozenset({"source"})


def _change(kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "detail": detail, **extra}


def _artifact_changes(
    where: str, a: dict[str, Artifact], b: dict[str, Artifact], same_version: bool
) -> list[dict[str, Any]]:
    out = []
    for p in sorted(set(a) | set(b)):
        x, y = a.get(p), b.get(p)
        if x is None or y is None:
            out.append(_change("artifact", f"{where}{p} {'added' if x is None else 'removed'}", platform=p))
            continue
        if x.url != y.url and same_version:
            out.append(_change("artifact", f"{where}{p} URL {x.url} → {y.url}", platform=p))
        if x.sha256 != y.sha256 and (same_version or x.url == y.url):
            what = "added" if x.sha256 is None else "missing" if y.sha256 is None else "CHANGED for the same file"
            out.append(_change("checksum", f"{where}{p} sha256 {what}", platform=p, a=x.sha256, b=y.sha256))
    return out


def component_changes(ca: ComponentLock, cb: ComponentLock) -> list[dict[str, Any]]:
    out = []
    if ca.version != cb.version:
        out.append(_change("version", f"{ca.version} → {cb.version}", a=ca.version, b=cb.version))
    if ca.current != cb.current:
        out.append(_change("current", f"installed {ca.current or '∅'} → {cb.current or '∅'}"))
    if ca.strategy != cb.strategy:
        out.append(_change("strategy", f"strategy {ca.strategy} → {cb.strategy}"))
    if ca.source.kind != cb.source.kind:
        out.append(_change("source", f"source {ca.source.kind} → {cb.source.kind}"))
    elif ca.source.as_of != cb.source.as_of:
        out.append(_change("source", f"data of {ca.source.as_of or '?'} → {cb.source.as_of or '?'}"))
    out += _artifact_changes("", ca.artifacts, cb.artifacts, ca.version == cb.version)
    adv_a = {x.id: x for x in ca.advisories}
    adv_b = {x.id: x for x in cb.advisories}
    for i in sorted(set(adv_a) | set(adv_b)):
        x, y = adv_a.get(i), adv_b.get(i)
        if x is None or y is None:
            out.append(_change("advisory", f"{i} {'new' if x is None else 'gone'}", id=i))
        elif bool(x.affects_target) != bool(y.affects_target):
            now = "now affects the target" if y.affects_target else "no longer affects the target"
            out.append(_change("advisory", f"{i} {now}", id=i))
    # A warning that only names the new target version (e.g. a missing checksum) is the same warning.
    wa = {w.replace(ca.version, "‹target›"): w for w in ca.warnings}
    wb = {w.replace(cb.version, "‹target›"): w for w in cb.warnings}
    out += [_change("warning", f"+ {wb[k]}") for k in sorted(set(wb) - set(wa))]
    out += [_change("warning", f"- {wa[k]}") for k in sorted(set(wa) - set(wb))]
    return out


def step_changes(sa: Step, sb: Step) -> list[str]:
    out = []
    for field in ("from_version", "phase", "risk", "priority", "rollback_floor"):
        x, y = getattr(sa, field), getattr(sb, field)
        if x != y:
            out.append(f"{field} {x or '–'} → {y or '–'}")
    if sa.approval != sb.approval:
        out.append(f"approval {sa.approval or 'pending'} → {sb.approval or 'pending'}")
    # Ordering changes, by component: a dependency that only moved to another version is not one.
    ra, rb = {r.split("@")[0] for r in sa.requires}, {r.split("@")[0] for r in sb.requires}
    if ra != rb:
        out.append("requires " + ", ".join([f"+{r}" for r in sorted(rb - ra)] + [f"-{r}" for r in sorted(ra - rb)]))
    out += [c["detail"] for c in _artifact_changes("artifact ", sa.artifacts, sb.artifacts, True)]
    return out


def _step_row(change: str, s: Step, details: list[str]) -> dict[str, Any]:
    return {
        "step": s.id,
        "component": s.component,
        "change": change,
        "from_version": s.from_version,
        "to_version": s.to_version,
        "risk": s.risk,
        "approval": s.approval,
        "details": details,
    }


def diff_steps(a: Lock, b: Lock) -> list[dict[str, Any]]:
    sa = {s.id: s for s in a.plan.steps}
    sb = {s.id: s for s in b.plan.steps}
    rows = [_step_row("removed", s, []) for i, s in sa.items() if i not in sb]
    rows += [_step_row("added", s, []) for i, s in sb.items() if i not in sa]
    for i, s in sb.items():
        if i in sa and (details := step_changes(sa[i], s)):
            rows.append(_step_row("changed", s, details))
    return rows


def diff_locks(a: Lock, b: Lock, show_all: bool = False) -> list[dict[str, Any]]:
    """One row per component; `changes` is what a reviewer sees (data-source changes only with show_all)."""
    steps = diff_steps(a, b)
    rows = []
    for name in sorted(set(a.components) | set(b.components)):
        ca, cb = a.components.get(name), b.components.get(name)
        row: dict[str, Any] = {"component": name, "a": ca.version if ca else None, "b": cb.version if cb else None}
        if ca is None or cb is None:
            changes = [_change("version", "only in " + ("b" if ca is None else "a"))]
        else:
            changes = [c for c in component_changes(ca, cb) if show_all or c["kind"] not in HIDDEN_BY_DEFAULT]
        step_rows = [s for s in steps if s["component"] == name]
        row.update(
            {
                "changes": [c["detail"] for c in changes if c["kind"] not in ("warning",)],
                "details": changes,
                "steps": step_rows,
                "steps_a": [s.id for s in a.plan.steps if s.component == name],
                "steps_b": [s.id for s in b.plan.steps if s.component == name],
                "same": not changes and not step_rows,
            }
        )
        rows.append(row)
    return rows


def summary_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many components differ, and how many changes of each kind (steps by added/removed/changed)."""
    out: dict[str, int] = {"components": len(rows), "differ": sum(1 for r in rows if not r["same"])}
    for r in rows:
        for c in r["details"]:
            out[c["kind"]] = out.get(c["kind"], 0) + 1
        for s in r["steps"]:
            key = f"steps_{s['change']}"
            out[key] = out.get(key, 0) + 1
            if any(d.startswith("approval ") for d in s["details"]):
                out["approval"] = out.get("approval", 0) + 1
    return out


def render_diff(rows: list[dict[str, Any]], a: str, b: str) -> str:
    width = max([len(r["component"]) for r in rows] + [9])
    lines = [f"{'component':<{width}}  {a}  →  {b}"]
    for r in rows:
        mark = "=" if r["same"] else "≠"
        what = [c["kind"] if c["kind"] == "version" else c["detail"] for c in r["details"] if c["kind"] != "warning"]
        if any(c["kind"] == "warning" for c in r["details"]):
            what.append("warnings")
        what += [f"step {s['step']} {s['change']}" for s in r["steps"]]
        detail = "" if r["same"] else "  (" + ", ".join(what) + ")"
        lines.append(f"{mark} {r['component']:<{width}}  {r['a'] or '-'}  →  {r['b'] or '-'}{detail}")
        for s in r["steps"]:
            lines += [f"    {s['step']}: {d}" for d in s["details"]]
    differing = sum(1 for r in rows if not r["same"])
    lines.append(f"{differing} of {len(rows)} components differ")
    return "\n".join(lines) + "\n"
