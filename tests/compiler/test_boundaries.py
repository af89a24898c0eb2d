"""The compiler never imports the executor, doit, subprocess or the CLI (STYLE.md §1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

COMPILER = Path(__file__).resolve().parents[2] / "compiler"


def test_compiler_loads_no_executor_doit_or_cli() -> None:
    code = (
        "import sys, obsplan.compiler.run, obsplan.compiler.check, obsplan.compiler.render.plan_report, obsplan.compiler.render.lock_diff\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'doit'"
        " or m.startswith('obsplan.executor') or m.startswith('obsplan.cli.main')]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_compiler_sources_do_not_import_side_effect_modules() -> None:
    # (httpx itself pulls in click for its optional CLI, so this is checked on our sources, not sys.modules.)
    for path in sorted(COMPILER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"subprocess", "click", "doit"}, f"{path.name} imports {name}"
                assert not name.startswith("obsplan.executor"), f"{path.name} imports {name}"
