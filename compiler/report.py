"""Human-readable renderings of a lock: the Markdown report (jinja2) and the one-line-per-component table."""

from __future__ import annotations

from importlib import resources

import jinja2

from .lock import Lock

_RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def component_risks(lock: Lock) -> dict[str, str]:
    out = {name: "none" for name in lock.components}
    for s in lock.plan.steps:
        if out[s.component] == "none" or _RISK_ORDER[s.risk] > _RISK_ORDER[out[s.component]]:
            out[s.component] = s.risk
    return out


def render_markdown(lock: Lock) -> str:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda n: resources.files("obsplan.templates").joinpath(n).read_text()),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
        undefined=jinja2.StrictUndefined,
    )
    node_ids = {s.id: f"s{i}" for i, s in enumerate(lock.plan.steps)}
    text = env.get_template("plan.md.j2").render(lock=lock, risks=component_risks(lock), node_ids=node_ids)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"


def upgrade_lines(lock: Lock) -> list[dict[str, str | None]]:
    """Rows for `check-upgrades`: current → target with a status word and the highest risk."""
    risks = component_risks(lock)
    rows = []
    for name, c in lock.components.items():
        if c.current is None:
            status = "not installed"
        elif c.current == c.version:
            status = "up to date"
        else:
            status = "upgrade available"
        rows.append(
            {
                "component": name,
                "current": c.current,
                "target": c.version,
                "status": status,
                "risk": risks[name],
                "source": c.source.kind,
            }
        )
    return rows
