"""The stages of one step, called directly with real parts: release archives built in a temporary directory and
served from a local directory (`LocalDirSource`), a real `state.db`, the executor's own layout. Each stage is a
function of what it needs that returns what it produced (`step_results.py`); nothing here is a double."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import obsplan.executor.artifacts.store as art
import pytest
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.reporters import RecordingReporter
from obsplan.executor.services.managers import make_service_manager
from obsplan.executor.stages import checkpoint, done, extract, fetch, finish, precheck, preflight
from obsplan.executor.stages.history_rows import StepClock
from obsplan.executor.stages.step_context import Context
from obsplan.executor.stages.step_journal import StepJournal
from obsplan.executor.stages.step_results import FetchResult, StepFailed, step_record
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Artifact, Step

from .conftest import PLATFORM, free_port, node_runtime

VERSION = "1.5.0"


def _release(directory: Path, reports: str = VERSION) -> Path:
    """A node_exporter release archive whose binary (a shell script) reports `reports` as its version."""
    script = f'#!/bin/sh\necho "node_exporter, version {reports} (branch: HEAD, revision: stage-test)"\n'.encode()
    path = directory / f"node_exporter-{VERSION}.linux-amd64.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"node_exporter-{VERSION}.linux-amd64/node_exporter")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return path


class Host:
    """A temporary root with its state.db, and one node_exporter step whose artifact is served from `www`."""

    def __init__(
        self,
        root: Path,
        archive: Path,
        sha256: str | None,
        dry_run: bool = False,
        from_version: str | None = None,
        **flags: Any,
    ) -> None:
        self.layout = Layout(root)
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        self.db = StateDB(self.layout.db_path)
        self.client = httpx.Client(trust_env=False)
        self.reporter = RecordingReporter()
        self.artifact = Artifact(
            url=f"https://example.invalid/{archive.name}", filename=archive.name, format="tar.gz", sha256=sha256
        )
        step = Step(
            id=f"node_exporter-{VERSION}", component="node_exporter", from_version=from_version, to_version=VERSION,
            phase="exporters", requires=[], risk="low", reasons=[], artifacts={PLATFORM: self.artifact},
        )  # fmt: skip
        ctx = Context(
            layout=self.layout,
            db=self.db,
            reporter=self.reporter,
            services=make_service_manager("supervisord", self.layout),
            client=self.client,
            source=art.LocalDirSource(archive.parent),
            run_id="run-1",
            platform=flags.pop("platform", PLATFORM),
            dry_run=dry_run,
            **flags,
        )
        self.db.start_run("run-1", "apply", None, "standard")
        self.facts = StepFacts(ctx, step, node_runtime(free_port()))
        self.journal = StepJournal(ctx, step.id, step.component)

    def journalled(self) -> list[tuple[str, str]]:
        rows = self.db.query("SELECT stage, status FROM journal WHERE step_id = ? ORDER BY id", (self.facts.step.id,))
        return [(r["stage"], r["status"]) for r in rows]

    def close(self) -> None:
        self.client.close()
        self.db.close()


@pytest.fixture
def www(tmp_path: Path) -> Path:
    directory = tmp_path / "www"
    directory.mkdir()
    return directory


@pytest.fixture
def host(tmp_path: Path, www: Path) -> Iterator[Host]:
    archive = _release(www)
    made = Host(tmp_path / "root", archive, art.sha256_file(archive))
    yield made
    made.close()


def test_fetch_verifies_and_then_finds_the_archive_cached(host: Host) -> None:
    first = fetch.run(host.facts, host.journal, host.artifact)
    assert first.archive == host.layout.downloads / host.artifact.filename
    assert first.fetched and first.unverified is None and first.artifact == host.artifact
    again = fetch.run(host.facts, host.journal, host.artifact)
    assert (again.archive, again.fetched) == (first.archive, False)
    assert host.reporter.names("node_exporter") == ["fetched", "fetch_cached"]
    assert host.journalled() == [("fetch", "begin"), ("fetch", "end")] * 2


def test_fetch_refuses_a_bad_checksum_and_keeps_nothing(tmp_path: Path, www: Path) -> None:
    archive = _release(www)
    host = Host(tmp_path / "root", archive, "0" * 64)
    try:
        with pytest.raises(ObsplanError, match="sha256 mismatch"):
            fetch.run(host.facts, host.journal, host.artifact)
        assert not any(host.layout.downloads.iterdir())
        assert host.journalled()[-1][0:2] == ("fetch", "error")
    finally:
        host.close()


def test_fetch_in_a_dry_run_says_what_it_would_fetch(tmp_path: Path, www: Path) -> None:
    archive = _release(www)
    host = Host(tmp_path / "root", archive, art.sha256_file(archive), dry_run=True)
    try:
        assert fetch.run(host.facts, host.journal, host.artifact) == FetchResult(host.artifact, None)
        assert host.reporter.names() == ["would_fetch"] and not host.layout.downloads.exists()
    finally:
        host.close()


def test_extract_is_idempotent_and_checks_the_binary_version(host: Host) -> None:
    fetched = fetch.run(host.facts, host.journal, host.artifact)
    first = extract.run(host.facts, host.journal, fetched)
    assert first.target == host.layout.version_dir("node_exporter", VERSION)
    assert (first.extracted, first.binary_version) == (True, VERSION)
    snapshot = sorted(str(p.relative_to(first.target)) for p in first.target.rglob("*"))
    again = extract.run(host.facts, host.journal, fetched)
    assert (again.target, again.extracted, again.binary_version) == (first.target, False, VERSION)
    assert sorted(str(p.relative_to(first.target)) for p in first.target.rglob("*")) == snapshot


def test_extract_refuses_a_binary_reporting_another_version(tmp_path: Path, www: Path) -> None:
    archive = _release(www, reports="1.4.0")
    host = Host(tmp_path / "root", archive, art.sha256_file(archive))
    try:
        fetched = fetch.run(host.facts, host.journal, host.artifact)
        with pytest.raises(StepFailed) as failed:
            extract.run(host.facts, host.journal, fetched)
        assert (failed.value.reason, failed.value.detail) == ("wrong_version", {"reported": "1.4.0"})
        assert host.layout.current_version("node_exporter") is None  # nothing was switched
    finally:
        host.close()


def test_checkpoint_result_carries_the_backup_and_is_resumed(host: Host) -> None:
    taken = checkpoint.run(host.facts, host.journal, None)
    assert taken.how == "taken" and taken.point is not None
    assert Path(taken.point.backup_dir).is_dir() and taken.point.from_version is None
    assert host.db.pending_point(host.facts.step.id) == taken.point
    resumed = checkpoint.run(host.facts, host.journal, host.db.pending_point(host.facts.step.id))
    assert (resumed.how, resumed.point) == ("resumed", taken.point)
    assert len(host.db.query("SELECT id FROM rollback_points")) == 1


def test_finish_builds_the_record_from_the_results(host: Host) -> None:
    clock = StepClock()
    clock.start()
    fetched = fetch.run(host.facts, host.journal, host.artifact)
    extract.run(host.facts, host.journal, fetched)
    unverified = FetchResult(fetched.artifact, fetched.archive, unverified="installed WITHOUT sha256 verification")
    point = checkpoint.run(host.facts, host.journal, None)
    finished = finish.run(host.facts, host.journal, clock, point, unverified)
    assert finished is not None and (finished.previous, finished.version, finished.floor) == (None, VERSION, None)
    installed = host.db.installed("node_exporter")
    assert installed is not None and (installed["version"], installed["last_result"]) == (VERSION, "ok")
    [row] = host.db.history("node_exporter")
    assert (row["kind"], row["success"], row["unverified"]) == ("upgrade", 1, unverified.unverified)
    assert row["started_at"] == clock.started_at
    assert host.journalled()[-2:] == [("step", "done"), ("finish", "end")]
    record = step_record(host.facts.step.id, "node_exporter", finished)
    assert (record.status, record.reason) == ("ok", "upgraded")
    assert record.detail == {"from": None, "to": VERSION, "floor": None, "removed": finished.removed}
    assert step_record(host.facts.step.id, "node_exporter", None).status == "would_run"


def test_the_step_clock_starts_once() -> None:
    clock = StepClock()
    started = (clock.started_at, clock.t0)  # read before the first stage: started then
    clock.start()  # the first stage starts it again: a no-op
    assert (clock.started_at, clock.t0) == started and clock.elapsed() >= 0


def test_preflight_on_a_fresh_host_hands_on_the_artifact(host: Host) -> None:
    result = preflight.run(host.facts, host.journal, [host.facts.step])
    assert (result.artifact, result.host_version, result.pending) == (host.artifact, None, None)
    assert host.reporter.names("node_exporter") == ["step_started", "preflight_ok"]
    assert host.journalled() == [("step", "start"), ("preflight", "begin"), ("preflight", "end")]


def test_preflight_refuses_what_cannot_run_here_before_anything_changes(tmp_path: Path, www: Path) -> None:
    archive = _release(www)
    digest = art.sha256_file(archive)
    cases = {
        "no_artifact_for_platform": Host(tmp_path / "a", archive, digest, platform="linux-riscv64"),
        "missing_sha256": Host(tmp_path / "b", archive, None),
        "off_plan_path": Host(tmp_path / "c", archive, digest, from_version="1.4.0"),  # the host runs nothing
    }
    try:
        for reason, host in cases.items():
            with pytest.raises(StepFailed) as failed:
                preflight.run(host.facts, host.journal, [host.facts.step])
            assert failed.value.reason == reason, failed.value
            assert host.journalled()[-1] == ("preflight", "error") and not host.layout.downloads.exists()
        assert cases["no_artifact_for_platform"].reporter.names() == ["step_started"]
        off = cases["off_plan_path"]
        with pytest.raises(StepFailed) as failed:
            preflight.run(off.facts, off.journal, [off.facts.step])
        assert failed.value.detail == {"host_version": None, "expected": "1.4.0"}
    finally:
        for host in cases.values():
            host.close()


def test_preflight_lets_through_what_the_operator_allowed(tmp_path: Path, www: Path) -> None:
    archive = _release(www)
    forced = Host(tmp_path / "a", archive, art.sha256_file(archive), from_version="1.4.0", force=True)
    unverified = Host(tmp_path / "b", archive, None, allow_unverified=True)
    try:
        assert preflight.run(forced.facts, forced.journal, [forced.facts.step]).host_version is None
        assert "off_plan_path_forced" in forced.reporter.names("node_exporter")
        assert preflight.run(unverified.facts, unverified.journal, [unverified.facts.step]).artifact.sha256 is None
    finally:
        forced.close()
        unverified.close()


def test_preflight_in_a_dry_run_accepts_a_start_earlier_in_the_chain(tmp_path: Path, www: Path) -> None:
    """A dry run shows every step of a chain; the host is still before the first one when the second is shown."""
    archive = _release(www)
    host = Host(tmp_path / "root", archive, art.sha256_file(archive), dry_run=True, from_version="1.4.0")
    try:
        first = host.facts.step.model_copy(
            update={"id": "node_exporter-1.4.0", "from_version": None, "to_version": "1.4.0"}
        )
        assert preflight.run(host.facts, host.journal, [first, host.facts.step]).host_version is None
        with pytest.raises(StepFailed):  # alone (not after the first step), the same start is off the plan's path
            preflight.run(host.facts, host.journal, [host.facts.step])
    finally:
        host.close()


def test_precheck_without_a_checker_and_done_on_a_fresh_host(host: Host) -> None:
    """node_exporter has no configuration checker: the pre-switch check has no verdict. The step is not done
    while nothing is linked, even once its release is extracted."""
    assert done.reason(host.facts, [host.facts.step], None) is None
    fetched = fetch.run(host.facts, host.journal, host.artifact)
    extract.run(host.facts, host.journal, fetched)
    assert precheck.run(host.facts, host.journal, host.artifact).verdict is None
    assert host.journalled()[-2:] == [("precheck", "begin"), ("precheck", "end")]
    assert done.reason(host.facts, [host.facts.step], None) is None
