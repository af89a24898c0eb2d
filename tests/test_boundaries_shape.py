"""The package layout is the map, and its rules are checked on the source (every import statement, function-local
ones too) and in a fresh interpreter (what importing a package really loads). One test per rule: a failure lists
every module that breaks it.

Layers, from the bottom: `obsplan.kernel` (errors, versions, path policy) ← `obsplan.safeio` (hostile input and
obsplan's own files) ← `obsplan.lock` (the contract: the lock, host facts, a bundle's wheelhouse index) ← the two
halves `obsplan.compiler` and `obsplan.executor`, and the fleet feature `obsplan.rollout` (which reaches the
executor only through the lock and the `obsplan` command on the hosts) ← the edges `obsplan.cli` and the pytest
plugin."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"obsplan": "obsplan", "compiler": "obsplan.compiler", "executor": "obsplan.executor"}
MAX_MODULES_PER_FOLDER = 15

KERNEL = ("obsplan.kernel",)
SAFEIO = (*KERNEL, "obsplan.safeio")
LOCK = (*SAFEIO, "obsplan.lock")
# package -> the obsplan packages its modules may import (besides itself and `obsplan` for `__version__`)
RULES: dict[str, tuple[str, ...]] = {
    "obsplan.kernel": KERNEL,
    "obsplan.safeio": SAFEIO,
    "obsplan.lock": LOCK,
    "obsplan.compiler": LOCK,
    "obsplan.executor": LOCK,
    "obsplan.rollout": LOCK,
    "obsplan.pytest_plugin": (*LOCK, "obsplan.compiler"),
}
THIRD_PARTY_FORBIDDEN = {
    "obsplan.compiler": ("click", "doit", "pyinfra"),
    "obsplan.executor": ("click", "pyinfra"),
    "obsplan.lock": ("click", "doit", "pyinfra", "httpx", "networkx"),
    "obsplan.kernel": ("click", "doit", "pyinfra", "httpx", "networkx"),
}


def modules() -> dict[str, Path]:
    """Every module of the installed tree by its import name (`compiler/` is `obsplan.compiler`)."""
    out: dict[str, Path] = {}
    for top, name in ROOTS.items():
        for path in sorted((REPO / top).rglob("*.py")):
            parts = [p for p in path.relative_to(REPO / top).with_suffix("").parts if p != "__init__"]
            out[".".join([name, *parts])] = path
    return out


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _inside(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def breaches(package: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for name, path in modules().items():
        if not _inside(name, (package,)):
            continue
        for imp in sorted(imported(path)):
            own = imp == "obsplan" or _inside(imp, (package, *allowed))
            third = _inside(imp, THIRD_PARTY_FORBIDDEN.get(package, ()))
            if (imp.startswith("obsplan") and not own) or third:
                bad.append(f"{name} imports {imp}")
    return bad


@pytest.mark.parametrize(("package", "allowed"), RULES.items(), ids=list(RULES))
def test_each_layer_imports_only_the_layers_below_it(package: str, allowed: tuple[str, ...]) -> None:
    assert any(_inside(m, (package,)) for m in modules()), f"{package} is empty: the rule checks nothing"
    bad = breaches(package, allowed)
    assert not bad, f"{package} may import only {allowed}:\n" + "\n".join(bad)


def test_a_breach_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule can fail: a kernel module importing the executor is named."""
    rogue = tmp_path / "rogue.py"
    rogue.write_text("from obsplan.executor.apply.engine import apply\nimport click\n")
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: {"obsplan.kernel.rogue": rogue})
    got = breaches("obsplan.kernel", KERNEL)
    assert [line.split(" imports ")[1] for line in got] == ["click", "obsplan.executor.apply.engine"]


def test_every_module_is_under_a_rule_or_an_edge() -> None:
    edges = ("obsplan.cli", "obsplan.__main__", "obsplan")
    loose = [m for m in modules() if not _inside(m, tuple(RULES)) and not _inside(m, edges[:2]) and m != edges[2]]
    assert not loose, f"put these in a package with a rule: {loose}"


def test_no_two_modules_share_a_name() -> None:
    names = Counter(p.stem for p in modules().values() if p.stem not in ("__init__", "__main__"))
    assert not [n for n, c in names.items() if c > 1], sorted(n for n, c in names.items() if c > 1)


def test_no_folder_is_a_flat_pile() -> None:
    folders = Counter(p.parent for p in modules().values() if p.stem != "__init__")
    big = {str(f.relative_to(REPO)): c for f, c in folders.items() if c > MAX_MODULES_PER_FOLDER}
    assert not big, f"group these folders into subpackages (<= {MAX_MODULES_PER_FOLDER} modules): {big}"


def test_every_package_says_what_it_holds() -> None:
    silent = [
        str(p.relative_to(REPO))
        for p in modules().values()
        if p.stem == "__init__" and not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert not silent, f"give these packages a docstring: {silent}"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("obsplan.executor", ("obsplan.compiler", "obsplan.rollout", "obsplan.cli")),
        ("obsplan.compiler", ("obsplan.executor", "obsplan.rollout", "obsplan.cli")),
        ("obsplan.rollout", ("obsplan.compiler", "obsplan.executor", "obsplan.cli")),
        ("obsplan.lock", ("obsplan.compiler", "obsplan.executor", "obsplan.rollout", "obsplan.cli")),
    ],
)
def test_importing_every_module_of_a_package_loads_nothing_it_must_not(
    package: str, forbidden: tuple[str, ...]
) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({forbidden!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
