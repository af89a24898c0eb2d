from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ghserver import FakeGitHub

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = Path(__file__).parent / "scenarios"
NOW = "2026-11-22T12:00:00+00:00"
UPSTREAM_APIS = ("GITHUB_API_URL", "GRAFANA_COM_API_URL", "OSV_API_URL")


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach upstream: an API a test does not point at its local server answers nothing (port 9)."""
    for var in UPSTREAM_APIS:
        if var not in os.environ:
            monkeypatch.setenv(var, "http://127.0.0.1:9")


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def obsplan_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gh: FakeGitHub) -> Path:
    """Point obsplan at the local GitHub server with an empty cache and a fixed clock."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
    monkeypatch.setenv("GRAFANA_COM_API_URL", gh.grafana_com_url)
    monkeypatch.setenv("OBSPLAN_CACHE_DIR", str(cache))
    monkeypatch.setenv("OBSPLAN_NOW", NOW)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return cache


def write_config(dest: Path, scenario: str, gh: FakeGitHub | None) -> Path:
    """Copy a scenario's config into dest, filling in the local server's URLs."""
    src = SCENARIOS / scenario
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.rglob("*"):
        if f.is_file() and f.name != "scenario.yaml":
            target = dest / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = f.read_text()
            if gh is not None:
                text = text.replace("{gh}", gh.url).replace("{gitlab}", gh.gitlab_url)
                text = text.replace("{grafana_dl}", gh.grafana_dl_url)
            target.write_text(text)
    return dest


@pytest.fixture
def copy_tree() -> object:
    return shutil.copytree


def forget_releases(cache: Path, gh: FakeGitHub, repo: str) -> None:
    """Drop the cached first releases page of `repo`, so the next plan asks the local server again."""
    from obsplan.compiler.sources.http_cache import RequestKey, entry_path

    entry_path(cache, RequestKey("GET", f"{gh.api_url}/repos/{repo}/releases?per_page=100")).unlink()
