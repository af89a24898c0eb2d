"""The Markdown report: decisions first, small enough to review, always under a PR comment's limit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from obsplan.compiler.render.fit_limit import COMMENT_LIMIT, KEEP_END, fit
from obsplan.compiler.render.plan_report import render_markdown
from obsplan.compiler.render.report_summary import abbreviate

from obsplan.lock.lockfile import Lock, load_lock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["staging", "production"]


@pytest.fixture(scope="module")
def staging() -> Lock:
    return load_lock(ROOT / "plans" / "staging.lock")


def summary_of(report: str) -> str:
    return report[report.index("## Summary") : report.index("## Components")]


@pytest.mark.parametrize("env", EXAMPLES)
def test_example_report_is_small_and_leads_with_decisions(env: str) -> None:
    report = (ROOT / "plans" / f"{env}.md").read_text()
    assert len(report.encode()) <= 20_000 and len(report) < COMMENT_LIMIT
    heads = re.findall(r"(?m)^## (.+)$", report)
    assert heads[:2] == ["Summary", "Components"] and "Step details" in heads
    summary = summary_of(report)
    for label in ("components change", "High risk:", "Security fixes:", "Pending approval:", "Refused rules:"):
        assert label in summary
    assert "Manual work:" in summary
    # The sentence about missing checksums was in every row; now it is stated once.
    assert report.count("apply will refuse it until a checksum is available") == 1
    assert report.count("<details>") == report.count("</details>") >= 10
    assert KEEP_END not in report and "fit:" not in report


def test_summary_names_the_decisions_with_links_that_resolve(staging: Lock) -> None:
    report = render_markdown(staging, refused=["[rule-x] something refused"], accepted=["[rule-y] accepted"])
    summary = summary_of(report)
    high = [s.id for s in staging.plan.steps if s.risk == "high"]
    assert f"**High risk:** {len(high)} step(s)" in summary and all(f"`{h}`" in summary for h in high)
    assert "**Security fixes:** 4 step(s)" in summary and "fixes GO-2026-5264" in summary
    assert "all 10 step(s)" in summary  # nothing in the example is approved for --auto
    assert "1: [rule-x] something refused" in summary and "[rule-y] accepted" in summary
    assert "GO-2026-5095 (still affects grafana 13.0.1)" in summary  # accepted by the policy's allow
    assert "prometheus-3-breaking" in summary and "rollback only to ≥ 2.55.0" in summary
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', report))
    headings = {h.lower().replace(" ", "-") for h in re.findall(r"(?m)^## (.+)$", report)}
    links = set(re.findall(r"\]\(#([^)]+)\)", report))
    assert links and links <= anchors | headings, links - anchors - headings


def test_long_version_lists_are_abbreviated(staging: Lock) -> None:
    report = render_markdown(staging)
    assert "11.0.1, 11.0.2, 11.0.3, 11.0.4, … 184 more …, 13.0.1" in report
    assert "11.5.5+security-01" not in report
    short = "no section for 1.0.0, 1.0.1"
    assert abbreviate(short) == short


def mermaid_blocks(report: str) -> list[list[str]]:
    return [b.strip().splitlines() for b in re.findall(r"```mermaid\n(.*?)```", report, re.S)]


def check_flowchart(lines: list[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """A structural parse of the flowchart subset the report emits: header, quoted node labels, plain edges."""
    assert lines[0] == "flowchart LR"
    nodes: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for line in lines[1:]:
        if m := re.fullmatch(r'\s*(s\d+)\["([^"\[\]{}<>]*)"\]', line):
            assert m.group(1) not in nodes
            nodes.add(m.group(1))
        elif m := re.fullmatch(r"\s*(s\d+) --> (s\d+)", line):
            edges.add((m.group(1), m.group(2)))
        else:
            raise AssertionError(f"not a node or edge line: {line!r}")
    assert all(a in nodes and b in nodes for a, b in edges)
    return nodes, edges


@pytest.mark.parametrize("env", EXAMPLES)
def test_mermaid_graph_parses_and_matches_the_plan(env: str) -> None:
    lock = load_lock(ROOT / "plans" / f"{env}.lock")
    (block,) = mermaid_blocks((ROOT / "plans" / f"{env}.md").read_text())
    nodes, edges = check_flowchart(block)
    assert len(nodes) == len(lock.plan.steps)
    assert len(edges) == sum(len(s.requires) for s in lock.plan.steps)


def big_lock(base: Lock, copies: int) -> Lock:
    """A synthetic lock with `copies` times every component and step of `base`, under new names."""
    components, steps = {}, []
    for i in range(copies):
        for name, c in base.components.items():
            components[f"{name}_{i}"] = c.model_copy(update={"warnings": [*c.warnings, f"site note {i}"]})
        rename = {s.id: f"{s.component}_{i}@{s.to_version}" for s in base.plan.steps}
        for s in base.plan.steps:
            steps.append(
                s.model_copy(
                    update={
                        "id": rename[s.id],
                        "component": f"{s.component}_{i}",
                        "requires": [rename[r] for r in s.requires],
                    }
                )
            )
    plan = base.plan.model_copy(update={"steps": steps})
    return base.model_copy(update={"components": components, "plan": plan}).sealed()


def test_a_big_lock_is_cut_in_the_details_never_in_the_summary(staging: Lock) -> None:
    lock = big_lock(staging, 40)
    full = render_markdown(lock, limit=None)
    assert len(full) > 4 * COMMENT_LIMIT
    report = render_markdown(lock)
    assert len(report) < COMMENT_LIMIT
    assert summary_of(report) == summary_of(full)
    assert "and 268 more" in summary_of(report)  # decision lists stay short whatever the size
    assert "> **Truncated:**" in report and "obsplan report LOCK --max-chars 0" in report
    assert report.count("<details>") == report.count("</details>")
    assert report.count("```") % 2 == 0


def test_fit_cuts_tables_at_a_line_and_never_leaves_a_fence_open() -> None:
    head = "# t\n\nsummary\n" + KEEP_END + "\n"
    body = "| a |\n|---|\n" + "| row |\n" * 50 + "```mermaid\nflowchart LR\n" + "  s1 --> s2\n" * 200 + "```\n"
    out = fit(head + body, 600, "see X")
    assert len(out) <= 600 and out.startswith("# t\n\nsummary\n") and "```" not in out
    assert "the end of the tables" in out and out.count("| row |") > 10


def test_compiled_template_cache_renders_the_same_report(staging: Lock, tmp_path: Path) -> None:
    """With a cache directory the compiled template is kept and reused; a damaged cache file is recompiled, and a
    cache directory that cannot be made is no cache."""
    plain = render_markdown(staging)
    assert render_markdown(staging, cache_dir=tmp_path) == plain
    (cached,) = (tmp_path / "templates").iterdir()
    assert render_markdown(staging, cache_dir=tmp_path) == plain
    cached.write_bytes(b"not a cache file")
    assert render_markdown(staging, cache_dir=tmp_path) == plain
    assert cached.read_bytes() != b"not a cache file"  # rewritten
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert render_markdown(staging, cache_dir=blocked) == plain
