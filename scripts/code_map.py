"""The map of the code, generated from the packages themselves: each package's folder, its docstring's first
sentence and its modules. `python scripts/code_map.py --write` refreshes the marked blocks in README.md and
docs/development.md; `tests/test_docs.py` fails when they drift from the tree."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOPS = ("obsplan", "compiler", "executor")
MARK = re.compile(r"(<!-- code-map:(\w+) -->\n).*?(<!-- /code-map -->)", re.S)


def packages() -> list[Path]:
    return sorted((init.parent for top in TOPS for init in (REPO / top).rglob("__init__.py")), key=str)


def first_sentence(init: Path) -> str:
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    text = " ".join(doc.split("\n\n")[0].split())
    cut = re.search(r"(?<=[a-z)`][.])\s", text)
    return (text[: cut.start()] if cut else text).rstrip(".:;")


def modules(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__",))


def short() -> str:
    rows = [
        f"| `{p.relative_to(REPO)}/` | {len(modules(p))} | {first_sentence(p / '__init__.py')} |" for p in packages()
    ]
    return "| package | modules | what it holds |\n|---|---:|---|\n" + "\n".join(rows) + "\n"


def full() -> str:
    out = []
    for p in packages():
        names = ", ".join(f"`{m}`" for m in modules(p))
        out.append(f"- **`{p.relative_to(REPO)}/`**: {first_sentence(p / '__init__.py')}. Modules: {names}.")
    return "\n".join(out) + "\n"


BLOCKS = {"short": short, "full": full}
FILES = (REPO / "README.md", REPO / "docs" / "development.md")


def refreshed(text: str) -> str:
    return MARK.sub(lambda m: m.group(1) + BLOCKS[m.group(2)]() + m.group(3), text)


if __name__ == "__main__":
    stale = [f for f in FILES if refreshed(f.read_text()) != f.read_text()]
    if "--write" in sys.argv:
        for f in stale:
            f.write_text(refreshed(f.read_text()))
    print("\n".join(f"{'refreshed' if '--write' in sys.argv else 'stale'}: {f.relative_to(REPO)}" for f in stale))
    sys.exit(1 if stale and "--write" not in sys.argv else 0)
