"""Human-readable renderings of a lock: the Markdown report (jinja2) and the one-line-per-component table."""

from __future__ import annotations

import contextlib
from pathlib import Path

import jinja2
from obsplan.compiler.plan.risk_order import riskier
from obsplan.compiler.render.fit_limit import COMMENT_LIMIT, fit
from obsplan.compiler.render.report_summary import SUMMARY_ITEMS, abbreviate, anchor, breaking_by_version, summarize

from obsplan.kernel.mdescape import md, md_code, mermaid_label
from obsplan.kernel.templating import shipped_templates
from obsplan.lock.lockfile import ComponentLock, Lock, Step

# The report always fits a GitHub PR comment, with room left for a line or two around it.
REPORT_LIMIT = COMMENT_LIMIT - 536
# Changelog breaking entries shown per step (the rest are counted; the upstream changelog has them all).
BREAKING_PER_STEP = 3


def component_risks(lock: Lock) -> dict[str, str]:
    out = {name: "none" for name in lock.components}
    for s in lock.plan.steps:
        if out[s.component] == "none" or riskier(s.risk, out[s.component]):
            out[s.component] = s.risk
    return out


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between runs (keyed by the template's source): compiling the report template
    costs more than rendering it. A cache that cannot be written only makes the next run slower."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _template_cache(cache_dir: Path | None) -> jinja2.BytecodeCache | None:
    if cache_dir is None:
        return None
    directory = cache_dir / "templates"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _TemplateCache(str(directory))


def template_env(cache_dir: Path | None = None) -> jinja2.Environment:
    """The reports' jinja environment; with `cache_dir`, compiled templates are kept in `cache_dir/templates`."""
    env = shipped_templates()
    env.bytecode_cache = _template_cache(cache_dir)
    env.filters["code"] = md_code
    env.filters["md"] = md
    env.filters["mermaid"] = mermaid_label
    env.filters["advisory_id"] = lambda text: text.split(" ")[0]
    return env


def render_markdown(
    lock: Lock,
    refused: list[str] | None = None,
    accepted: list[str] | None = None,
    limit: int | None = REPORT_LIMIT,
    cache_dir: Path | None = None,
) -> str:
    """The report: summary of decisions, tables, details; at most `limit` characters (details are cut first,
    the summary never). `refused`/`accepted`: rules that refused the plan / were overridden by `allow`;
    `cache_dir`: where compiled templates are kept between runs (none: compiled every time)."""
    node_ids = {s.id: f"s{i}" for i, s in enumerate(lock.plan.steps)}
    env = template_env(cache_dir)
    env.filters["step_number"] = lambda step_id: int(node_ids[step_id][1:]) + 1

    def breaking(step: Step) -> tuple[str, list[tuple[str, list[str]]], int]:
        return breaking_by_version(step, BREAKING_PER_STEP)

    text = env.get_template("plan.md.j2").render(
        lock=lock,
        risks=component_risks(lock),
        node_ids=node_ids,
        sm=summarize(lock, refused or [], accepted or []),
        max_items=SUMMARY_ITEMS,
        anchor=anchor,
        abbreviate=abbreviate,
        breaking=breaking,
    )
    return fit(text, limit, "the lock has everything: `obsplan report LOCK --max-chars 0` renders it in full")


def _moves_back(c: ComponentLock) -> bool:
    old, new = c.current_value, c.version_value
    return old is not None and new is not None and new < old


def upgrade_lines(lock: Lock) -> list[dict[str, str | None]]:
    """Rows for `check-upgrades`: current → target with a status word and the highest risk."""
    risks = component_risks(lock)
    rows = []
    for name, c in lock.components.items():
        if c.current is None:
            status = "not installed"
        elif c.current == c.version:
            status = "up to date"
        elif _moves_back(c):
            status = "downgrade"
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
