"""The executor's modules import one another without a circle: each import statement at run time (function-local
ones too, not those under `if TYPE_CHECKING:`) is an edge of a graph built from the source, and the graph has no
cycle. A circle means a module cannot be read without the one that needs it (e.g. a service manager and the
factory that picks it)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "obsplan.executor"


def executor_modules(root: Path = REPO / "executor") -> dict[str, Path]:
    """Every module under `executor/` by its import name."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [p for p in path.relative_to(root).with_suffix("").parts if p != "__init__"]
        out[".".join([PACKAGE, *parts])] = path
    return out


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside `if TYPE_CHECKING:` blocks (never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def runtime_imports(path: Path, known: set[str]) -> set[str]:
    """The executor modules `path` imports when it runs (`from pkg import module` counts as the module)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name in known}


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    known = set(mods)
    return {name: runtime_imports(path, known) - {name} for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_executor_imports_form_no_cycle() -> None:
    cycle = find_cycle(import_graph(executor_modules()))
    assert cycle is None, "the executor's imports form a circle: " + " → ".join(cycle or [])


def test_a_cycle_is_found(tmp_path: Path) -> None:
    """The check can fail: two modules importing each other (one inside a function) are named."""
    pkg = tmp_path / "services"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "managers.py").write_text(
        "def make():\n    from obsplan.executor.services.systemd import SystemdManager\n    return SystemdManager\n"
    )
    (pkg / "systemd.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from obsplan.executor.services.managers import make\n"
        "if TYPE_CHECKING:\n    from obsplan.executor.services import other\n"
    )
    (pkg / "other.py").write_text("from obsplan.executor.services import systemd\n")
    cycle = find_cycle(import_graph(executor_modules(tmp_path)))
    assert cycle == [
        "obsplan.executor.services.managers",
        "obsplan.executor.services.systemd",
        "obsplan.executor.services.managers",
    ]
