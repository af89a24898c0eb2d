"""Breaking-change detection on the vendored upstream CHANGELOG files (tests/fixtures/changelogs)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import get_args

import obsplan.compiler.intel.breaking_changes as changelog
import pytest
from obsplan.compiler.intel.breaking_changes import (
    MARK_BANG,
    MARK_CHANGE,
    MARK_CURATED,
    MARK_FLAG,
    MARK_REMOVED,
    MARK_SECTION,
    Changelog,
    breaking_between,
    load_breaking_policy,
    merge_changelogs,
    summarise,
)
from obsplan.compiler.intel.changelog_parse import parse_changelog, parse_release_body

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import BreakingChange, BreakingMarker

FIXTURES = Path(__file__).parent / "fixtures" / "changelogs"
V = Version.parse


@cache
def load(relpath: str) -> Changelog:
    path = FIXTURES / relpath
    return parse_changelog(path.read_text(encoding="utf-8"), source=path.name)


def prometheus() -> list[Changelog]:
    return [
        load("prometheus__prometheus/CHANGELOG.md"),
        load("prometheus__prometheus/CHANGELOG.release-3.5-LTS.md"),
    ]


def texts(result) -> list[str]:
    return [e.text for e in result.entries]


def test_prometheus_headings_skip_unreleased_and_keep_lts_patches_separate():
    main, lts = prometheus()
    assert "3.14.0" in main and "2.53.0" in main
    assert "3.5.3" not in main and "3.5.3" in lts
    assert all(k[0].isdigit() for k in lts)  # `## main / unreleased` is no version
    merged = merge_changelogs([main, lts])
    assert "3.5.5" in merged and "3.14.0" in merged


def test_prometheus_2_48_to_2_55():
    result = breaking_between(prometheus(), V("2.48.1"), V("2.55.1"))
    assert result.coverage.status == "complete"
    assert {e.marker for e in result.entries} == {MARK_CHANGE}
    assert "2.48.1" not in summarise(result)  # from is exclusive
    assert any("Runtime: Change GOGC threshold from 100 to 75" in t for t in texts(result))
    versions = [e.version.version for e in result.entries]
    assert versions == sorted(versions)


def test_prometheus_2_55_to_3_14_lists_the_3_0_removals():
    result = breaking_between(prometheus(), V("2.55.1"), V("3.14.0"))
    assert result.coverage.status == "complete"
    counts = summarise(result)
    assert counts["3.0.0"] >= 26
    all_text = "\n".join(texts(result))
    assert "Disallow configuring AM with the v1 api. #13883" in all_text
    assert (
        "Remove deprecated `storage.tsdb.allow-overlapping-blocks`, `alertmanager.timeout`, "
        "and `storage.tsdb.retention` flags." in all_text
    )
    assert "`holt_winters` is now called `double_exponential_smoothing`" in all_text
    src = next(e.source for e in result.entries if str(e.version) == "3.0.0")
    assert src == "CHANGELOG.md: ## 3.0.0 / 2024-11-14"


def test_bugfix_mentioning_breaking_or_removed_is_not_breaking():
    main = load("prometheus__prometheus/CHANGELOG.md")
    reverted = [e for e in main["3.7.1"] if "reverts the breaking changes" in e.text]
    assert reverted and not reverted[0].breaking
    text = "## 1.0.0 / 2024-01-01\n\n* [BUGFIX] Fix removed series being returned. #1\n* Remove the `foo` flag. #2\n"
    entries = parse_changelog(text)["1.0.0"]
    assert [(e.breaking, e.marker) for e in entries] == [(False, None), (True, MARK_REMOVED)]


def test_loki_2_9_to_3_7():
    result = breaking_between([load("grafana__loki/CHANGELOG.md")], V("2.9.3"), V("3.7.6"))
    # 3.7.6 is tagged but has no CHANGELOG section: the caller must not lower the risk.
    assert result.coverage.status == "partial"
    assert result.coverage.missing == ["3.7.6"]
    counts = summarise(result)
    assert counts["3.0.0"] >= 10
    all_text = "\n".join(texts(result))
    assert "Removes `shared_store` and `shared_store_key_prefix`" in all_text
    assert "BREAKING CHANGE: refactor how we do defaults for runtime overrides" in all_text
    section = [e for e in result.entries if e.marker == MARK_SECTION]
    assert any("Fail log queries when executed on instant query endpoint" in e.text for e in section)
    assert "(#13421)" in next(e.text for e in section if "instant query" in e.text)  # links flattened


def test_loki_missing_versions_from_known_releases():
    releases = [V("3.6.8"), V("3.6.9"), V("3.6.10"), V("3.7.0"), V("3.7.1"), V("3.7.2")]
    result = breaking_between([load("grafana__loki/CHANGELOG.md")], V("3.6.7"), V("3.7.2"), releases=releases)
    assert result.coverage.status == "partial"
    assert result.coverage.missing == ["3.6.9", "3.7.2"]


def test_node_exporter_web_config_flag_rename():
    result = breaking_between([load("prometheus__node_exporter/CHANGELOG.md")], V("1.4.0"), V("1.5.0"))
    flag = [e for e in result.entries if e.marker == MARK_FLAG]
    assert len(flag) == 1
    assert "`--web.config` to `--web.config.file`" in flag[0].text
    assert str(flag[0].version) == "1.5.0"


def test_node_exporter_breaking_subsection_joins_nested_items():
    entries = load("prometheus__node_exporter/CHANGELOG.md")["1.0.0"]
    md = next(e for e in entries if e.text.startswith("Refactoring of the mdadm collector"))
    assert md.marker == MARK_SECTION
    assert "`node_md_disks_active` is removed" in md.text


def test_alertmanager_v1_api_removal():
    result = breaking_between([load("prometheus__alertmanager/CHANGELOG.md")], V("0.26.0"), V("0.27.0"))
    assert any("Removal of all `api/v1/` endpoints" in t for t in texts(result))
    assert all(str(e.version) == "0.27.0" for e in result.entries)


def test_mysqld_exporter_data_source_name():
    result = breaking_between([load("prometheus__mysqld_exporter/CHANGELOG.md")], V("0.14.0"), V("0.15.0"))
    section = [e for e in result.entries if e.marker == MARK_SECTION]
    assert any("no longer supports the monolithic `DATA_SOURCE_NAME`" in e.text for e in section)
    dropped = next(e for e in section if e.text.startswith("We have also dropped"))
    assert "`mysql_last_scrape_failed`" in dropped.text
    assert not any(e.text == "For example:" for e in section)  # lead-in to a code block
    assert not any("MYSQLD_EXPORTER_PASSWORD=secret" in e.text for e in section)  # the code block itself


def test_grafana_excerpt_10_4_to_11_legacy_alerting():
    changelog = load("grafana__grafana/CHANGELOG-excerpt.md")
    assert set(changelog) == {"11.0.0", "11.0.0-preview"}  # 10.x/12.0/13.0 blocks have no version heading
    result = breaking_between([changelog], V("10.4.0"), V("11.0.0"))
    assert result.coverage.status == "complete"
    assert any("the legacy alerting reaches the end-of-life" in t for t in texts(result))
    assert summarise(result)["11.0.0"] == 1
    assert not any(t.startswith("Issue ") for t in texts(result))  # issue-only lines join their paragraph


def test_grafana_markers_and_prerelease_range():
    text = (
        "<!-- 12.0.0 START -->\n\n# 12.0.0 (2025-05-05)\n\n### Breaking changes\n\n"
        "- **Frontend:** Remove Angular (Enterprise)\n\n### Bug fixes\n\n- **Alerting:** Fix a thing\n"
        "<!-- 12.0.0 END -->\n<!-- 12.0.0-preview START -->\n\n# 12.0.0-preview\n\n### Breaking changes\n\n"
        "- Something breaks early\n<!-- 12.0.0-preview END -->\n"
    )
    changelog = parse_changelog(text)
    assert [e.breaking for e in changelog["12.0.0"]] == [True, False]
    to_final = breaking_between([changelog], V("11.6.0"), V("12.0.0"))
    assert summarise(to_final) == {"12.0.0-preview": 1, "12.0.0": 1}
    to_pre = breaking_between([changelog], V("11.6.0"), V("12.0.0-preview"), releases=[V("12.0.0-preview")])
    assert summarise(to_pre) == {"12.0.0-preview": 1}
    assert to_pre.coverage.status == "complete"


def test_nginx_format_and_uncovered_range():
    changelog = load("nginx__nginx-prometheus-exporter/CHANGELOG.md")
    assert "0.8.0" in changelog and "0.1.0" in changelog
    changed = [e for e in changelog["0.8.0"] if e.breaking]
    assert any("distroless" in e.text for e in changed)  # a `CHANGES:` entry
    assert not any("Fix link to metrics path" in e.text for e in changelog["0.8.0"] if e.breaking)
    result = breaking_between([changelog], V("1.1.0"), V("1.5.3"))
    assert result.coverage.status == "unavailable"
    assert result.entries == []


@pytest.mark.parametrize("text", ["", "just some prose\n\n* a bullet\n", "## main / unreleased\n\n* [CHANGE] x\n"])
def test_empty_or_unparseable_changelog_is_unavailable(text):
    result = breaking_between([parse_changelog(text)], V("1.0.0"), V("2.0.0"))
    assert result.coverage.status == "unavailable"
    assert result.entries == []
    assert breaking_between([], V("1.0.0"), V("2.0.0")).coverage.status == "unavailable"


def test_release_body_conventional_commits():
    body = (
        "## Changelog\n\n### Breaking Changes\n\n* 1a2b3c4 feat!: drop the `-nginx.plus` flag\n\n"
        "### New Features\n\n* 5d6e7f8 feat(api)!: change the metrics path\n* 9abcdef feat: add TLS options\n\n"
        "### Bug fixes\n\n* 0123456 fix: remove stale series\n"
    )
    changelog = parse_release_body(body, V("1.5.0"))
    entries = changelog["1.5.0"]
    assert [(e.breaking, e.marker) for e in entries] == [
        (True, MARK_SECTION),
        (True, MARK_BANG),
        (False, None),
        (False, None),
    ]
    assert entries[0].text == "1a2b3c4 feat!: drop the `-nginx.plus` flag"
    assert entries[0].source == "release body: v1.5.0"
    assert summarise(breaking_between([changelog], V("1.4.0"), V("1.5.0"))) == {"1.5.0": 2}


def test_breaking_policy_curated_entries_merge_with_the_changelog():
    policy = load_breaking_policy()
    assert policy.components["prometheus"].changelogs == ["CHANGELOG.md", "CHANGELOG.release-3.5-LTS.md"]
    assert str(policy.components["nginx_exporter"].release_bodies_from) == "0.9.0"
    grafana = [load("grafana__grafana/CHANGELOG-excerpt.md"), policy.curated("grafana")]
    result = breaking_between(grafana, V("10.4.0"), V("12.0.0"))
    curated = [e for e in result.entries if e.marker == MARK_CURATED]
    assert [str(e.version) for e in curated] == ["11.0.0", "12.0.0"]
    assert policy.curated("node_exporter") == {}


def test_breaking_policy_rejects_bad_versions(tmp_path):
    bad = tmp_path / "breaking-changes.yaml"
    bad.write_text("components:\n  x:\n    curated:\n      - {version: one, text: t, source: s}\n", encoding="utf-8")
    with pytest.raises(ObsplanError) as exc:
        load_breaking_policy(bad)
    assert exc.value.file == str(bad)


def test_lock_markers_are_the_detection_rules():
    """The lock accepts exactly the markers the rules set (mypy checks the other way: every rule's marker is one
    the lock accepts), and a breaking entry becomes a lock entry field for field."""
    rules = {v for k, v in vars(changelog).items() if k.startswith("MARK_")}
    assert set(get_args(BreakingMarker)) == rules
    [entry] = parse_release_body(
        "## Breaking Changes\n* drop the v1 API\n", V("2.0.0"), source="GitHub release v2.0.0"
    )["2.0.0"]
    assert entry.lock_entry() == BreakingChange(
        version="2.0.0", text="drop the v1 API", source="GitHub release v2.0.0: v2.0.0", marker=MARK_SECTION
    )
    with pytest.raises(ValueError, match="no breaking marker"):
        entry.model_copy(update={"marker": None}).lock_entry()
