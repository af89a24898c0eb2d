"""A bundle's manifest.json is input too: too deep, too large, duplicate keys or not UTF-8 is one line, exit 2,
and the bundle directory is left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.corpus import good_lock, one_error_line, reseal, run, tree

MANIFESTS: dict[str, tuple[bytes, str]] = {
    "deep": (b'{"files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    "duplicate-keys": (b'{"files": {}, "files": {}}', "twice"),
    "non-utf8": (b'{"files": {}, "x": "\xff"}', "UTF-8"),
    "oversize": (b" " * (17 * 1024 * 1024) + b'{"files": {}}', "larger than"),
    "infinity": (b'{"files": {}, "size": Infinity}', "Infinity"),
}


@pytest.fixture(scope="module")
def lock_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return reseal(good_lock(tmp_path_factory.mktemp("good")))


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_hostile_manifest_refused(case: str, lock_bytes: bytes, tmp_path: Path) -> None:
    data, expected = MANIFESTS[case]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "obsplan.lock").write_bytes(lock_bytes)
    (bundle / "manifest.json").write_bytes(data)
    before = tree(tmp_path)
    result = run(["bundle", "--verify", str(bundle)], tmp_path)
    assert result.exit_code == 2, (result.output, result.stderr)
    line = one_error_line(result)
    assert "manifest.json" in line and expected in line, line
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith("cache")} == before
