"""Shape budgets, checked on the source so they cannot drift back: a function that needs a scroll needs a split
(at most 60 lines from `def` to its last line), and a module holds one idea (at most 400 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("compiler", "executor", "obsplan")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def _long_functions(path: Path, root: Path = REPO) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} is {lines} lines")
    return out


def test_no_function_needs_a_scroll() -> None:
    long = [line for path in _sources() for line in _long_functions(path)]
    assert not long, f"split these into named steps (<= {MAX_FUNCTION_LINES} lines):\n" + "\n".join(long)


def test_every_module_holds_one_idea() -> None:
    counts = {p: len(p.read_text().splitlines()) for p in _sources()}
    big = [f"{p.relative_to(REPO)} has {n} lines" for p, n in counts.items() if n > MAX_MODULE_LINES]
    assert not big, f"one idea per file (<= {MAX_MODULE_LINES} lines):\n" + "\n".join(big)


def test_the_budget_sees_long_functions(tmp_path: Path) -> None:
    """The check itself can fail: a 61-line function is reported, a 60-line one is not."""
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    (tmp_path / "ok.py").write_text(f"def fits():\n{body}")
    (tmp_path / "long.py").write_text(f"def too_long():\n{body}    return 1\n")
    assert _long_functions(tmp_path / "ok.py", tmp_path) == []
    assert _long_functions(tmp_path / "long.py", tmp_path) == [f"long.py:1 too_long is {MAX_FUNCTION_LINES + 1} lines"]
