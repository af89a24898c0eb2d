"""`obsplan diff --format markdown`: the diff of two locks as a PR comment (always under GitHub's limit)."""

from __future__ import annotations

from typing import Any

from obsplan.compiler.render.fit_limit import COMMENT_LIMIT, fit
from obsplan.compiler.render.plan_report import template_env

from obsplan.kernel.mdescape import md, md_code

_LABELS = {
    "version": "version change(s)",
    "steps_added": "step(s) added",
    "steps_removed": "step(s) removed",
    "steps_changed": "step(s) changed",
    "checksum": "checksum change(s)",
    "approval": "approval change(s)",
    "advisory": "advisory change(s)",
    "artifact": "artifact change(s)",
    "warning": "warning change(s)",
    "source": "data-source change(s)",
}


def render_diff_markdown(
    rows: list[dict[str, Any]], counts: dict[str, int], a: str, b: str, show_all: bool, limit: int | None = None
) -> str:
    steps = [s for r in rows for s in r["steps"]]
    alarms = [
        f"{r['component']} {r['b']}: {c['detail']}"
        for r in rows
        for c in r["details"]
        if c["kind"] == "checksum" and "CHANGED" in c["detail"]
    ]
    env = template_env()

    def tally() -> str:
        parts = [f"{counts[k]} {label}" for k, label in _LABELS.items() if counts.get(k)]
        return (": " + " · ".join(parts)) if parts else ""

    def what(r: dict[str, Any]) -> str:
        text = [md(_short(c)) for c in r["details"]] + [f"{md(s['change'])} {md_code(s['step'])}" for s in r["steps"]]
        return "; ".join(dict.fromkeys(text))

    text = env.get_template("diff.md.j2").render(
        rows=rows,
        steps=steps,
        counts=counts,
        a=a,
        b=b,
        show_all=show_all,
        checksum_alarms=alarms,
        tally=tally,
        what=what,
    )
    return fit(text, limit or COMMENT_LIMIT - 536, "run `obsplan diff` locally for everything")


def _short(change: dict[str, Any]) -> str:
    kind, detail = change["kind"], change["detail"]
    if kind == "version":
        return detail if detail.startswith("only in") else "version"
    return {"artifact": "artifacts", "checksum": "checksums", "warning": "warnings"}.get(kind, detail)
