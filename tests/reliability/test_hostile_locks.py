"""Forged, re-sealed and malformed locks: every command that reads one refuses it with one line, exit 2,
before anything under --root (or the bundle output) is touched."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.corpus import good_lock, one_error_line, reseal, run, tree

Forge = Callable[[dict[str, Any]], dict[str, Any]]


def _rename_component(d: dict[str, Any], new: str) -> dict[str, Any]:
    d["components"][new] = d["components"].pop("node_exporter")
    for s in d["plan"]["steps"]:
        if s["component"] == "node_exporter":
            s["component"] = new
    return d


def _set_version(d: dict[str, Any], version: str) -> dict[str, Any]:
    d["components"]["node_exporter"]["version"] = version
    d["plan"]["steps"][0]["to_version"] = version
    return d


def _artifact(d: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    for holder in (d["components"]["node_exporter"], d["plan"]["steps"][0]):
        for a in holder["artifacts"].values():
            a[key] = value
    return d


def _runtime(d: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    d["components"]["node_exporter"]["runtime"][key] = value
    return d


def _step(d: dict[str, Any], f: Callable[[list[dict[str, Any]]], None]) -> dict[str, Any]:
    f(d["plan"]["steps"])
    return d


FORGED: dict[str, tuple[Forge, str]] = {
    "name-traversal": (lambda d: _rename_component(d, "../../x"), "components"),
    "name-absolute": (lambda d: _rename_component(d, "/tmp/x"), "components"),
    "version-traversal": (lambda d: _set_version(d, "../../x"), "version"),
    "version-absolute": (lambda d: _set_version(d, "/tmp/x"), "version"),
    "filename-slash": (lambda d: _artifact(d, "filename", "../../x.tar.gz"), "filename"),
    "filename-dotdot": (lambda d: _artifact(d, "filename", ".."), "filename"),
    "url-unparsable": (lambda d: _artifact(d, "url", "http://[::1"), "url"),
    "url-scheme": (lambda d: _artifact(d, "url", "ftp://example.invalid/x.tar.gz"), "url"),
    "data-dir-traversal": (lambda d: _runtime(d, "data_dir", "/../../../X"), "data_dir"),
    "data-dir-relative": (lambda d: _runtime(d, "data_dir", "var/X"), "data_dir"),
    "config-file-dotdot": (lambda d: _runtime(d, "config_file", "/etc/../../X"), "config_file"),
    "binaries-key-traversal": (lambda d: _runtime(d, "binaries", {"../../../../X": "*/node_exporter"}), "binaries"),
    "binaries-glob-traversal": (lambda d: _runtime(d, "binaries", {"x": "../../*"}), "binaries"),
    "service-binary-path": (lambda d: _runtime(d, "service_binary", "../x"), "service_binary"),
    "port-out-of-range": (lambda d: _runtime(d, "port", 70000), "port"),
    "step-requires-itself": (lambda d: _step(d, lambda s: s[0]["requires"].append(s[0]["id"])), "requires itself"),
    "step-listed-twice": (lambda d: _step(d, lambda s: s.append(copy.deepcopy(s[0]))), "listed twice"),
    "step-missing-component": (lambda d: _step(d, lambda s: s[0].update(component="grafana")), "does not have"),
    "step-requires-missing": (lambda d: _step(d, lambda s: s[1]["requires"].append("nope@1.0.0")), "not in the plan"),
    "step-to-version-traversal": (lambda d: _step(d, lambda s: s[0].update(to_version="../../x")), "to_version"),
    "environment-traversal": (lambda d: {**d, "environment": "../x"}, "environment"),
}


def _text_cases(good: dict[str, Any]) -> dict[str, tuple[bytes, str]]:
    text = reseal(good).decode()
    return {
        "deep-json": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested"),
        "duplicate-keys": (text.replace('"environment":', '"environment": "x", "environment":', 1).encode(), "twice"),
        "non-utf8": (text.encode().replace(b'"default"', b'"d\xffefault"', 1), "UTF-8"),
        "utf16": (text.encode("utf-16"), "UTF-8"),
        "nan": (text.replace('"port": 9100', '"port": NaN', 1).encode(), "NaN"),
        "oversize": (b" " * (17 * 1024 * 1024) + text.encode(), "larger than"),
        "not-an-object": (b"[1, 2]", "lock"),
        "truncated": (text.encode()[: len(text) // 2], "not valid JSON"),
    }


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return good_lock(tmp_path_factory.mktemp("good"))


def _refused_everywhere(tmp_path: Path, data: bytes, expected: str) -> None:
    lock = tmp_path / "forged.lock"
    lock.write_bytes(data)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "sentinel").write_text("unchanged")
    before_root, before_all = tree(root), tree(tmp_path)
    for args in (
        ["apply", str(lock), "--root", str(root)],
        ["apply", str(lock), "--root", str(root), "--dry-run"],
        ["status", "--root", str(root), "--lock", str(lock)],
        ["bundle", str(lock), "-o", str(tmp_path / "b")],
        ["diff", str(lock), str(lock)],
        ["sign", str(lock), "--key", str(tmp_path / "nokey")],
    ):
        result = run(args, tmp_path)
        assert result.exit_code == 2, (args, result.output, result.stderr)
        line = one_error_line(result)
        assert "forged.lock" in line and expected in line, line
        assert tree(root) == before_root
        assert not (tmp_path / "b").exists() and not (tmp_path / "forged.lock.sig").exists()
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("cache")} == {
        k: v for k, v in before_all.items() if not k.startswith("cache")
    }


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_resealed_lock_refused(case: str, good: dict[str, Any], tmp_path: Path) -> None:
    forge, expected = FORGED[case]
    _refused_everywhere(tmp_path, reseal(forge(copy.deepcopy(good))), expected)


@pytest.mark.parametrize(
    "case", ["deep-json", "duplicate-keys", "non-utf8", "utf16", "nan", "oversize", "not-an-object", "truncated"]
)
def test_malformed_lock_refused(case: str, good: dict[str, Any], tmp_path: Path) -> None:
    data, expected = _text_cases(good)[case]
    _refused_everywhere(tmp_path, data, expected)


def test_resealed_good_lock_still_accepted(good: dict[str, Any], tmp_path: Path) -> None:
    """The forging helper itself is faithful: an unchanged lock re-sealed is accepted (so refusals above are
    the path policy's doing, not a broken hash)."""
    lock = tmp_path / "same.lock"
    lock.write_bytes(reseal(good))
    result = run(["diff", str(lock), str(lock)], tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(lock.read_bytes()) == good
