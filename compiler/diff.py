"""`obsplan diff A.lock B.lock`: what differs per component between two environments' locks."""

from __future__ import annotations

from typing import Any

from .lock import Lock


def diff_locks(a: Lock, b: Lock) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(set(a.components) | set(b.components)):
        ca, cb = a.components.get(name), b.components.get(name)
        row: dict[str, Any] = {"component": name, "a": ca.version if ca else None, "b": cb.version if cb else None}
        changes = []
        if ca is None or cb is None:
            changes.append("only in " + ("b" if ca is None else "a"))
        else:
            if ca.version != cb.version:
                changes.append("version")
            if ca.strategy != cb.strategy:
                changes.append(f"strategy {ca.strategy} → {cb.strategy}")
            if ca.source.kind != cb.source.kind:
                changes.append(f"source {ca.source.kind} → {cb.source.kind}")
            for p in sorted(set(ca.artifacts) | set(cb.artifacts)):
                sa, sb = ca.artifacts.get(p), cb.artifacts.get(p)
                if (sa and sa.sha256) != (sb and sb.sha256) and ca.version == cb.version:
                    changes.append(f"sha256 differs on {p}")
        steps_a = [s.id for s in a.plan.steps if s.component == name]
        steps_b = [s.id for s in b.plan.steps if s.component == name]
        row.update({"changes": changes, "steps_a": steps_a, "steps_b": steps_b, "same": not changes})
        rows.append(row)
    return rows


def render_diff(rows: list[dict[str, Any]], a: str, b: str) -> str:
    width = max([len(r["component"]) for r in rows] + [9])
    lines = [f"{'component':<{width}}  {a}  →  {b}"]
    for r in rows:
        mark = "=" if r["same"] else "≠"
        detail = "" if r["same"] else "  (" + ", ".join(r["changes"]) + ")"
        lines.append(f"{mark} {r['component']:<{width}}  {r['a'] or '-'}  →  {r['b'] or '-'}{detail}")
    differing = sum(1 for r in rows if not r["same"])
    lines.append(f"{differing} of {len(rows)} components differ")
    return "\n".join(lines) + "\n"
