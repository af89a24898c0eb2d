"""The tree stays ruff-clean (lint and format), as the project's habits require."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args: list[str]) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is installed by `pip install -e '.[test]'` (.ci/run)")
    done = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    """Type-checked as configured in pyproject.toml (strict on the lock contract and the shared kernel)."""
    pytest.importorskip("mypy", reason="mypy is installed by `pip install -e '.[test]'` (.ci/run)")
    done = subprocess.run(["python3", "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
