"""pytest plugin shipped with obsplan (entry point `pytest11`): snapshot-test your upgrade plans.

    def test_production_plan(obsplan_plan, snapshot):          # snapshot: syrupy
        assert obsplan_plan("production") == snapshot

`obsplan_plan(env, config_dir="config", *, as_dict=False, allow=())` compiles ENV from CONFIG_DIR (relative
to pytest's rootdir) offline, from the release snapshot embedded in obsplan, with no cache, and returns the plan
as stable YAML text (or a dict). The clock is the `obsplan_now` ini option, else $OBSPLAN_NOW, else the date of
the embedded release data, so the plan changes only when your configuration or obsplan changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "obsplan_config_dir", "obsplan_plan: default configuration folder (from the rootdir)", default="config"
    )
    parser.addini("obsplan_now", "obsplan_plan: the clock, an ISO date (default: the embedded data's date)", default="")


def _now(config: pytest.Config) -> datetime:
    from obsplan.compiler.sources.snapshot import SnapshotSource

    raw = str(config.getini("obsplan_now") or os.environ.get("OBSPLAN_NOW") or SnapshotSource.embedded().as_of)
    when = datetime.fromisoformat(raw)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@pytest.fixture
def obsplan_plan(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Compile an environment offline and return its plan as stable YAML text (as_dict=True: a dict)."""
    from obsplan.compiler.config.inputs import load_inputs
    from obsplan.compiler.config.plan_options import Options
    from obsplan.compiler.render.plan_view import plan_text, plan_view
    from obsplan.compiler.run import Settings, compile_environment

    config = request.config
    settings = Settings(
        api_url="http://offline.invalid", token=None, cache_dir=None, ttl=timedelta(0), now=_now(config)
    )

    def compile_plan(
        env: str, config_dir: str | Path | None = None, *, as_dict: bool = False, allow: tuple[str, ...] = ()
    ) -> Any:
        folder = Path(config_dir if config_dir is not None else str(config.getini("obsplan_config_dir")))
        if not folder.is_absolute():
            folder = config.rootpath / folder
        opts = Options(environment=env, now=settings.now, offline=True, allow=frozenset(allow))
        result = compile_environment(load_inputs(folder), opts, settings)
        view = plan_view(result.lock, [str(r) for r in result.refusals])
        return view if as_dict else plan_text(view)

    return compile_plan
