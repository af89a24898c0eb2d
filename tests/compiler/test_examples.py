"""The checked-in example locks in plans/ must be what scripts/regen-plans produces today."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_plans_are_fresh(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    for name in ("examples", "plans", "scripts"):
        shutil.copytree(ROOT / name, work / name)
    subprocess.run(["bash", "scripts/regen-plans"], cwd=work, check=True, capture_output=True)
    stale = [
        p.name for p in sorted((ROOT / "plans").iterdir()) if (work / "plans" / p.name).read_bytes() != p.read_bytes()
    ]
    assert not stale, f"plans/ is stale ({stale}): run scripts/regen-plans and commit the result"
