"""The release's own checker judging a configuration (`executor/checks/config_verdict.py`), with a stand-in
checker script in place of promtool: the live file, and a rollback point's saved copy checked in its place
(beside the live file, under a fresh name created exclusively, removed afterwards)."""

from __future__ import annotations

import os
from pathlib import Path

from obsplan.executor.checks.config_verdict import check_release
from obsplan.executor.host.layout import Layout

from .conftest import free_port, prometheus_runtime

CHECKER = """#!/bin/sh
# promtool check config FILE: accepts a file that says "good"; records what it was given
for last; do :; done
echo "$last" >> "$(dirname "$0")/../given"
grep -q good "$last" || { echo "FAILED: $last is not good" >&2; exit 1; }
echo "SUCCESS: $last is valid"
"""


def _setup(tmp_path: Path, live: str) -> tuple[Layout, Path, Path]:
    layout = Layout(tmp_path / "root")
    runtime = prometheus_runtime(free_port())
    assert runtime.config_file is not None
    config = layout.host(runtime.config_file)
    config.parent.mkdir(parents=True)
    config.write_text(live)
    release = tmp_path / "release" / "3.5.3"
    (release / "prometheus-3.5.3.linux-amd64").mkdir(parents=True)  # as a release archive unpacks
    tool = release / "prometheus-3.5.3.linux-amd64" / "promtool"
    tool.write_text(CHECKER)
    tool.chmod(0o755)
    return layout, config, release


def test_the_live_configuration_is_judged_by_the_target_release(tmp_path: Path) -> None:
    layout, config, release = _setup(tmp_path, "bad: yes\n")
    verdict = check_release("prometheus", prometheus_runtime(9090), "3.5.3", release, layout)
    assert verdict is not None and verdict.outcome == "refused" and "is not good" in verdict.output
    assert (release / "given").read_text().split() == [str(config)]


def test_a_saved_copy_is_checked_in_place_of_the_live_file_and_removed(tmp_path: Path) -> None:
    layout, config, release = _setup(tmp_path, "bad: yes\n")
    saved = tmp_path / "saved.yml"
    saved.write_text("good: yes\n")
    # the name this process once used (pid and file name): a link planted there by the service's user is not followed
    planted = config.with_name(f".obsplan-check-{os.getpid()}-{config.name}")
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    planted.symlink_to(victim)
    verdict = check_release("prometheus", prometheus_runtime(9090), "3.5.3", release, layout, content=saved)
    assert verdict is not None and verdict.outcome == "accepted", verdict
    assert verdict.config == f"{config} as the rollback point saved it" and ".obsplan-check-" not in verdict.output
    [given] = (release / "given").read_text().split()
    assert Path(given).parent == config.parent and Path(given).name.startswith(".obsplan-check-")
    assert not Path(given).exists() and victim.read_text() == "untouched\n"
    assert sorted(p.name for p in config.parent.iterdir()) == sorted([config.name, planted.name])
    assert config.read_text() == "bad: yes\n"
