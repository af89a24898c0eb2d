"""`list-versions`' rows from real tag histories (tests/fixtures/upstream/*/tags.tsv, vendored from upstream)."""

from __future__ import annotations

from pathlib import Path

import pytest
from obsplan.compiler.sources.release_list import Tag, component_definition, release_rows

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version

UPSTREAM = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"


def _tags(repo_dir: str) -> list[Tag]:
    """The tag history as a release source gives it: (tag, date, pre-release flag); tags carry no flag."""
    lines = (UPSTREAM / repo_dir / "tags.tsv").read_text().splitlines()
    return [(line.split("\t")[0], line.split("\t")[1], False) for line in lines if line.strip()]


def _rows(component: str, repo_dir: str, show_all: bool = False) -> list[dict[str, object]]:
    defn, offline = component_definition(component, None, "default")
    assert not offline
    return [dict(r) for r in release_rows(_tags(repo_dir), defn, show_all)]


def test_node_exporter_releases_newest_first_without_release_candidates() -> None:
    rows = _rows("node_exporter", "prometheus__node_exporter")
    assert [r["tag"] for r in rows[:3]] == ["v1.12.1", "v1.12.0", "v1.11.1"]
    assert rows[-1] == {"tag": "0.6.0", "version": "0.6.0", "date": "2014-11-24T19:45:56Z", "prerelease": False}
    versions = [Version.parse(str(r["version"])) for r in rows]
    assert versions == sorted(versions, reverse=True)
    assert not any("rc" in str(r["tag"]) for r in rows)  # 0.12.0rc1 and v0.13.0-rc.2 alike


def test_all_adds_release_candidates_flagged() -> None:
    rows = _rows("node_exporter", "prometheus__node_exporter", show_all=True)
    assert len(rows) == len(_tags("prometheus__node_exporter"))
    candidates = [r for r in rows if r["version"] == "0.13.0-rc.2"]
    assert sorted(str(r["tag"]) for r in candidates) == ["0.13.0-rc.2", "v0.13.0-rc.2"]
    assert all(r["prerelease"] for r in candidates)


def test_prometheus_go_module_twins_and_stray_tags_only_with_all() -> None:
    rows = _rows("prometheus", "prometheus__prometheus")
    tags = [r["tag"] for r in rows]
    assert tags[0] == "v3.14.0"
    assert "v0.314.0" not in tags and "all-tests-pass" not in tags and "checkout" not in tags
    everything = _rows("prometheus", "prometheus__prometheus", show_all=True)
    strays = [r for r in everything if r["version"] is None]
    assert {"all-tests-pass", "checkout", "v0.314.0"} <= {r["tag"] for r in strays}
    assert everything[-len(strays) :] == strays  # tags that name no release come last


def test_loki_monorepo_tags_of_other_products_are_not_releases() -> None:
    tags = [r["tag"] for r in _rows("loki", "grafana__loki")]
    assert tags[0] == "v3.7.6"
    assert not any(str(t).startswith(("helm-loki-", "operator/")) for t in tags)


def test_unknown_component_is_bad_input() -> None:
    with pytest.raises(ObsplanError, match="unknown component 'nope'"):
        component_definition("nope", None, "default")
