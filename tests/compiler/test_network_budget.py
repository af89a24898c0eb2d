"""Requests counted on the local GitHub server: a warm re-plan sends none, a rate limit stops the rest."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from obsplan.cli.main import main

from ..conftest import write_config
from ..ghserver import FakeGitHub


def plan(cfg: Path) -> None:
    result = CliRunner().invoke(main, ["plan", "--config-dir", str(cfg), "--env", "staging"])
    assert result.exit_code == 0, result.output


def test_warm_replan_inside_the_ttl_sends_no_request(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    gh.fail(r"/repos/grafana/loki/contents/", status=404, times=None)  # upstream without that CHANGELOG
    plan(cfg)
    assert [r for r in gh.requests if r.status == 404]
    gh.clear_requests()
    plan(cfg)
    assert gh.requests == []  # including the files that answered 404 the first time


def test_after_a_rate_limit_no_further_api_request_is_sent(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", "seed", gh)
    gh.rate_limit(True)
    plan(cfg)
    limited = [r for r in gh.requests if r.path.startswith("/repos/")]
    # requests already in flight when the first 403 arrives complete (at most the compiler's concurrency, 8);
    # without the breaker every component's releases, tags and changelogs would be asked for (dozens)
    assert 1 <= len(limited) <= 8, [r.path for r in limited]
