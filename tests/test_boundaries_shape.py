"""Import boundaries, both ways: the lock contract (obsplan/lockfile.py and the shared kernel beside it) is all
the executor and the compiler share. Checked on the source (every import statement, function-local ones too)
and in a fresh interpreter (what importing a package really loads)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _sources(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("executor"), ids=lambda p: p.name)
def test_executor_imports_no_compiler_module(path: Path) -> None:
    bad = {n for n in imported(path) if n.startswith(("obsplan.compiler", "obsplan.cli")) or n == "click"}
    assert not bad, f"executor/{path.name} imports {sorted(bad)}: share it through obsplan/lockfile.py instead"


@pytest.mark.parametrize("path", _sources("compiler"), ids=lambda p: p.name)
def test_compiler_imports_no_executor_module(path: Path) -> None:
    bad = {n for n in imported(path) if n.startswith(("obsplan.executor", "obsplan.cli", "doit")) or n == "click"}
    assert not bad, f"compiler/{path.name} imports {sorted(bad)}"


EDGES = ("cli", "__main__", "pytest_plugin")  # the CLI and the pytest plugin are the edges that join both halves


def _kernel_modules() -> list[Path]:
    return sorted(p for p in (REPO / "obsplan").glob("*.py") if not p.name.startswith(EDGES))


def test_the_kernel_list_holds_the_lock_contract() -> None:
    names = {p.name for p in _kernel_modules()}
    assert {"lockfile.py", "lock_review.py", "errors.py", "versions.py", "fsio.py"} <= names
    assert not any(n.startswith("cli") for n in names)


@pytest.mark.parametrize("path", _kernel_modules(), ids=lambda p: p.name)
def test_kernel_modules_belong_to_neither_side(path: Path) -> None:
    bad = {n for n in imported(path) if n.startswith(("obsplan.compiler", "obsplan.executor"))}
    assert not bad, f"obsplan/{path.name} is shared kernel but imports {sorted(bad)}"


@pytest.mark.parametrize(
    ("package", "forbidden"), [("obsplan.executor", "obsplan.compiler"), ("obsplan.compiler", "obsplan.executor")]
)
def test_importing_every_module_of_a_half_loads_nothing_of_the_other(package: str, forbidden: str) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({forbidden!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
