"""A lock as reviewed (obsplan/lock/review.py): loading one for apply/bundle, and how two lock files differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.review import load_reviewed_lock, lock_difference


def _lock_json(**changes: object) -> bytes:
    data: dict[str, object] = {
        "content_sha256": "1" * 64,
        "environment": "prod",
        "obsplan_version": "0.1.0",
        "platforms": ["linux-amd64"],
        "components": {"prometheus": {"version": "2.53.0"}, "loki": {"version": "3.1.0"}},
    }
    data.update(changes)
    return json.dumps(data, indent=2, sort_keys=True).encode()


def test_an_unsupported_lock_names_the_obsplan_that_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "future.lock"
    path.write_text(json.dumps({"format_version": 3, "obsplan_version": "9.0.0"}))
    with pytest.raises(ObsplanError) as caught:
        load_reviewed_lock(path)
    assert caught.value.key == "format_version"
    assert caught.value.message.startswith("lock format 3 (written by obsplan 9.0.0) is newer than this obsplan")
    assert "9.0.0" in str(caught.value.hint)


def test_an_unsupported_lock_without_a_writer_is_refused_plainly(tmp_path: Path) -> None:
    path = tmp_path / "future.lock"
    path.write_text(json.dumps({"format_version": 3}))
    with pytest.raises(ObsplanError) as caught:
        load_reviewed_lock(path)
    assert caught.value.key == "format_version" and "(obsplan_version missing)" in caught.value.message


def test_other_errors_pass_unchanged(tmp_path: Path) -> None:
    with pytest.raises(ObsplanError) as caught:
        load_reviewed_lock(tmp_path / "missing.lock")
    assert caught.value.message == "lock file not found"


def test_difference_names_hash_fields_and_component_versions() -> None:
    given = _lock_json(
        content_sha256="2" * 64,
        environment="staging",
        components={"prometheus": {"version": "3.0.0"}, "grafana": {"version": "11.0.0"}},
    )
    assert lock_difference(_lock_json(), given) == "; ".join(
        [
            f"content_sha256 {'1' * 12} (bundle) vs {'2' * 12} (LOCK)",
            "environment prod (bundle) vs staging (LOCK)",
            "grafana absent (bundle) vs 11.0.0 (LOCK)",
            "loki 3.1.0 (bundle) vs absent (LOCK)",
            "prometheus 2.53.0 (bundle) vs 3.0.0 (LOCK)",
        ]
    )


def test_difference_shows_at_most_six_parts() -> None:
    comps = {f"c{i}": {"version": str(i)} for i in range(10)}
    text = lock_difference(_lock_json(), _lock_json(content_sha256="2" * 64, components=comps))
    assert text.count(";") == 5


def test_same_content_in_other_bytes_is_named_as_re_encoded() -> None:
    compact = json.dumps(json.loads(_lock_json())).encode()
    assert lock_difference(_lock_json(), compact).startswith("same content, different bytes")


def test_files_that_are_not_lock_json_differ_by_their_first_differing_line() -> None:
    assert lock_difference(b"a\nb\nc\n", b"a\nB\nc\n") == "line 2: 'b' (bundle) vs 'B' (LOCK)"
    assert lock_difference(b"a\n", b"a\nmore\n") == "line 2: '<end of file>' (bundle) vs 'more' (LOCK)"
    assert lock_difference(b"[1]", b"[2]") == "line 1: '[1]' (bundle) vs '[2]' (LOCK)"
