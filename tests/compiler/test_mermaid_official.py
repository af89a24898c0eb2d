"""The report's Mermaid graph parses with the official mermaid parser (node; mermaid and jsdom pinned in
tests/mermaid/package-lock.json, installed once into tests/.mermaidcache). The structural check that needs no
node is tests/compiler/test_report.py::test_mermaid_graph_parses_and_matches_the_plan."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from tests.compiler.test_report import EXAMPLES, mermaid_blocks

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "tests" / "mermaid"
CACHE = ROOT / "tests" / ".mermaidcache"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def mermaid_parse() -> Callable[[str], dict[str, object]]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm (.ci/apt-packages.txt) run the official mermaid parser")
    CACHE.mkdir(exist_ok=True)
    with FileLock(str(CACHE / ".lock")):
        for name in ("package.json", "package-lock.json", "parse.mjs"):
            shutil.copyfile(SRC / name, CACHE / name)
        if not (CACHE / "node_modules" / "mermaid" / "package.json").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CACHE, check=True, capture_output=True)

    def parse(text: str) -> dict[str, object]:
        done = subprocess.run([node, str(CACHE / "parse.mjs")], input=text, capture_output=True, text=True, check=False)
        return json.loads(done.stdout.strip().splitlines()[-1])

    return parse


@pytest.mark.parametrize("env", EXAMPLES)
def test_example_graph_parses(env: str, mermaid_parse: Callable[[str], dict[str, object]]) -> None:
    (block,) = mermaid_blocks((ROOT / "plans" / f"{env}.md").read_text())
    assert mermaid_parse("\n".join(block) + "\n") == {"ok": True, "type": "flowchart-v2"}


def test_the_parser_rejects_a_broken_graph(mermaid_parse: Callable[[str], dict[str, object]]) -> None:
    result = mermaid_parse('flowchart LR\n  s0["a"] -> s1\n')
    assert result["ok"] is False and "Parse error" in str(result["error"])
