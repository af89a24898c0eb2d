"""Hypothesis fuzzing of forged locks: one value of a real lock replaced (or removed), the content hash
recomputed as an attacker would, then `apply --dry-run`, `status --lock` and `diff` read it. Each must end in
exit 0, 1 or 2 (never 3, never a hang) and leave --root exactly as it was."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import FUZZ_EXAMPLES, Record, no_hang
from tests.reliability.corpus import good_lock, reseal, run, tree
from tests.reliability.test_fuzz_config import junk

PER_RUN = max(1, -(-FUZZ_EXAMPLES // 3))
Path_ = tuple[str | int, ...]


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    out: list[Path_] = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(data: dict[str, Any], path: Path_, value: Any, delete: bool) -> dict[str, Any]:
    data = copy.deepcopy(data)
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="obsplan-fuzz-lock-") as tmp:
        return good_lock(Path(tmp))


@settings(max_examples=PER_RUN, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_forged_locks(outcomes: Record, good: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(good)), label="path")
    delete = data.draw(st.booleans(), label="delete")
    value = data.draw(junk, label="value")
    forged = reseal(_mutate(good, path, value, delete))
    with tempfile.TemporaryDirectory(prefix="obsplan-fuzz-lock-") as tmp:
        base = Path(tmp)
        lock, root = base / "forged.lock", base / "root"
        lock.write_bytes(forged)
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "sentinel").write_text("unchanged")
        before = tree(root)
        for args in (
            ["apply", str(lock), "--root", str(root), "--dry-run"],
            ["status", "--root", str(root), "--lock", str(lock)],
            ["diff", str(lock), str(lock)],
        ):
            with no_hang(120):
                result = run(args, base)
            code = result.exit_code
            outcomes(f"fuzz forged locks: {args[0]}", code, code in (0, 1, 2) and tree(root) == before)
            assert code in (0, 1, 2), (args, path, value, result.output, result.stderr)
            assert tree(root) == before, (args, path, value)
