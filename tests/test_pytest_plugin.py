"""The pytest plugin users get with obsplan: `obsplan_plan` snapshot tests in a user's repository (pytester)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

USER_TEST = """
def test_production_plan(obsplan_plan, snapshot):
    assert obsplan_plan("production") == snapshot


def test_staging_as_dict(obsplan_plan):
    plan = obsplan_plan("staging", as_dict=True)
    assert plan["components"]["prometheus"]["target"] == "3.14.0"
    assert [s["id"] for s in plan["steps"] if s["id"].startswith("prometheus@")] == [
        "prometheus@2.55.1",
        "prometheus@3.14.0",
    ]
"""


@pytest.fixture
def user_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's repository: config/ (the shipped example) and a snapshot test; no network, no cache."""
    shutil.copytree(ROOT / "examples", pytester.path / "config")
    pytester.makepyfile(test_plans=USER_TEST)
    monkeypatch.delenv("OBSPLAN_NOW", raising=False)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # nothing listens: any connection would fail
    monkeypatch.setenv("GRAFANA_COM_API_URL", "http://127.0.0.1:9")
    return pytester


def test_snapshot_of_a_plan_and_its_diff(user_repo: pytest.Pytester) -> None:
    user_repo.runpytest_subprocess("--snapshot-update").assert_outcomes(passed=2)
    (snap,) = (user_repo.path / "__snapshots__").glob("*.ambr")
    text = snap.read_text()
    assert "- id: prometheus@3.13.2" in text and "approval: pending" in text
    assert "content_sha256" not in text and "obsplan_version" not in text
    user_repo.runpytest_subprocess().assert_outcomes(passed=2)  # stable: compiles to the same text again

    # A reviewer's change to the configuration shows up as a snapshot diff of the plan.
    versions = user_repo.path / "config" / "versions.yaml"
    versions.write_text(versions.read_text().replace('version: "0.28.1"', 'version: "0.27.0"'))
    result = user_repo.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines([r".*-\s+target: 0\.28\.1", r".*\+\s+target: 0\.27\.0"], consecutive=False)


def test_config_dir_and_clock_come_from_ini(user_repo: pytest.Pytester) -> None:
    shutil.move(user_repo.path / "config", user_repo.path / "ops")
    user_repo.makeini("[pytest]\nobsplan_config_dir = ops\nobsplan_now = 2026-11-22\n")
    user_repo.makepyfile(
        test_clock="""
def test_eol_warning_follows_the_clock(obsplan_plan):
    plan = obsplan_plan("staging", as_dict=True)
    assert any("support ended 2026-09-30" in w for w in plan["components"]["prometheus"]["warnings"])
"""
    )
    user_repo.runpytest_subprocess("test_clock.py").assert_outcomes(passed=1)


def test_a_bad_config_fails_the_test_naming_the_key(user_repo: pytest.Pytester) -> None:
    (user_repo.path / "config" / "versions.yaml").write_text("components:\n  node_exporter:\n    strateg: latest\n")
    result = user_repo.runpytest_subprocess("-k", "staging")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*versions.yaml*components.node_exporter.strateg*unknown key*"])


def test_the_documented_example_runs(user_repo: pytest.Pytester) -> None:
    readme = (ROOT / "docs" / "review-ci.md").read_text()
    section = readme[readme.index("### Snapshot-testing plans") :]
    code = section[
        section.index("```python\n") + len("```python\n") : section.index("```\n", section.index("```python"))
    ]
    (user_repo.path / "test_plans.py").write_text(code)
    user_repo.runpytest_subprocess("--snapshot-update").assert_outcomes(passed=3)
    user_repo.runpytest_subprocess().assert_outcomes(passed=3)
