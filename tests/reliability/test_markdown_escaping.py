"""Text from outside in the PR report, the diff comment and the rollout summary (issue 18, Integrity): an
advisory summary, a CHANGELOG entry, a warning, a host name, host output or Prometheus error text carrying
`</details>`, `<script>`, a forged `## heading`, a `|` or a line break renders as the text it is — checked by
rendering the Markdown to HTML with a CommonMark+tables parser, as GitHub does, not by looking for strings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from obsplan.compiler.render.plan_report import render_markdown

from obsplan.kernel.mdescape import md, md_code
from obsplan.lock.lockfile import Lock, load_lock
from obsplan.rollout.report import markdown as rollout_markdown
from tests.reliability.conftest import FUZZ_EXAMPLES, Record

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = [
    "</details><script>alert(1)</script>",
    "x\n\n## Forged heading\n\n<img src=x onerror=alert(1)>",
    "## Forged heading",
    "a | b | c\n|---|---|",
    "<!-- fit:keep-end --> cut here",
    "\\",
    "`</details>`",
    "- item\n- ***\n1. list",
    "tab\there\r\nand\x1b[31mred\u202eevil",
]
_PARSER = MarkdownIt("commonmark", {"html": True}).enable("table")


def _html(text: str) -> str:
    return _PARSER.render(text)


def _shape(html: str) -> dict[str, Any]:
    """What a reader sees of the document's structure."""
    return {
        "h": re.findall(r"<h(\d)>", html),
        "details": (html.count("<details>"), html.count("</details>")),
        "script": html.count("<script"),
        "img": html.count("<img"),
        "rows": [len(re.findall(r"<t[dh]", row)) for row in re.findall(r"<tr>.*?</tr>", html, re.S)],
    }


def _hostile_lock(payload: str) -> Lock:
    lock = load_lock(ROOT / "plans" / "staging.lock")
    comps = {}
    for name, c in lock.components.items():
        advisories = [a.model_copy(update={"summary": payload}) for a in c.advisories]
        comps[name] = c.model_copy(update={"advisories": advisories, "warnings": [*c.warnings, payload]})
    steps = []
    for s in lock.plan.steps:
        breaking = [b.model_copy(update={"text": payload}) for b in s.breaking_changes]
        reasons = [r.model_copy(update={"detail": payload}) for r in s.reasons]
        steps.append(s.model_copy(update={"breaking_changes": breaking, "reasons": reasons}))
    plan = lock.plan.model_copy(update={"steps": steps})
    return lock.model_copy(update={"components": comps, "plan": plan})


@pytest.fixture(scope="module")
def clean_shape() -> dict[str, Any]:
    return _shape(_html(render_markdown(_hostile_lock("plain words"), limit=None)))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_plan_report_keeps_its_shape(payload: str, clean_shape: dict[str, Any], outcomes: Record) -> None:
    text = render_markdown(_hostile_lock(payload), limit=None)
    shape = _shape(_html(text))
    ok = shape == clean_shape
    outcomes("markdown::plan report", 0 if ok else 3, ok)
    assert shape == clean_shape
    assert "\u202e" not in text and "\x1b" not in text


def _rollout(payload: str) -> str:
    ro = {
        "id": "r1",
        "status": "halted",
        "lock_path": f"locks/{payload}.lock",
        "lock_sha256": "ab" * 32,
        "inventory": payload,
        "started_at": "2026-01-01T00:00:00",
        "finished_at": None,
        "options": {"gates": [f'up{{job="{payload}"}}'], "soak": 1, "interval": 1, "initial_delay": 0},
        "batches": [{"index": 0, "name": payload, "hosts": [payload]}],
    }
    results = [{"batch": 0, "host": payload, "action": "apply", "status": "failed", "detail": {"reason": payload}}]
    bad = {"query": payload, "ok": False, "reason": f"query error: {payload}"}
    measurements = [{"batch": 0, "n": 0, "ok": False, "detail": {"results": [bad]}}]
    return rollout_markdown(ro, results, measurements)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_rollout_summary_keeps_its_shape(payload: str, outcomes: Record) -> None:
    shape, clean = _shape(_html(_rollout(payload))), _shape(_html(_rollout("plain")))
    ok = shape == clean
    outcomes("markdown::rollout summary", 0 if ok else 3, ok)
    assert shape == clean


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_is_one_inert_line(text: str, outcomes: Record) -> None:
    """In a table cell and after a list marker, escaped text never adds a block, a tag, a cell or a row."""
    doc = f"| a | b |\n|---|---|\n| {md(text)} | {md_code(text)} |\n\n- {md(text)}\n\n<details>\n\n{md(text)}\n\n</details>\n"
    html = _html(doc)
    shape = _shape(html)
    ok = shape["rows"] == [2, 2] and shape["details"] == (1, 1) and not shape["h"] and not shape["script"]
    ok = ok and html.count("<li>") == 1 and html.count("<table>") == 1
    outcomes("markdown::fuzzed text", 0 if ok else 3, ok)
    assert ok, (text, html)
