"""Where mysqld_exporter's credentials are read on a host (docs/credentials.md), and which version
`rollback --last-run` may go back to; without running binaries (the sequences: test_e2e_operator_sequences)."""

from __future__ import annotations

from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st
from obsplan.executor.artifacts.store import HttpSource
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.mysql_from_host import mysql_from_host
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.recovery.lastrun import allowed_before
from obsplan.executor.reporters import RecordingReporter
from obsplan.executor.services.managers import make_service_manager
from obsplan.executor.stages.step_context import Context

from obsplan.kernel.versions import Version
from obsplan.lock.lockfile import Step

from .conftest import PLATFORM, catalog_runtime, free_port


def _facts(root: Path, dry_run: bool = False) -> StepFacts:
    layout = Layout(root)
    client = httpx.Client(trust_env=False)
    ctx = Context(
        layout=layout,
        db=None,
        reporter=RecordingReporter(),
        services=make_service_manager("supervisord", layout),
        client=client,
        source=HttpSource(client),
        run_id="t",
        platform=PLATFORM,
        dry_run=dry_run,
    )
    step = Step(
        id="m", component="mysqld_exporter", from_version=None, to_version="0.17.2", phase="x", requires=[],
        risk="low", reasons=[], artifacts={},
    )  # fmt: skip
    return StepFacts(ctx, step, catalog_runtime("mysqld_exporter", free_port()))


def test_sources_in_order_and_nothing_found(tmp_path: Path) -> None:
    assert mysql_from_host(_facts(tmp_path)) is None
    home = tmp_path / "var/lib/prometheus/.my.cnf"  # Debian's prometheus user
    home.parent.mkdir(parents=True)
    home.write_text("[client]\nuser=deb\npassword='p w'\n")
    conn, where = mysql_from_host(_facts(tmp_path)) or (None, "")
    assert conn is not None and (conn.user, conn.address) == ("deb", "localhost:3306")
    assert where == "/var/lib/prometheus/.my.cnf (the exporter's default)"
    assert (tmp_path / conn.password_file.lstrip("/")).read_text() == "p w"

    env = tmp_path / "etc/default/prometheus-mysqld-exporter"
    env.parent.mkdir(parents=True)
    env.write_text('DATA_SOURCE_NAME="u:pa@ss@tcp(db.example:3307)/"\n')
    unit = tmp_path / "etc/systemd/system/prometheus-mysqld-exporter.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nEnvironmentFile=-/etc/default/prometheus-mysqld-exporter\n")
    conn, where = mysql_from_host(_facts(tmp_path)) or (None, "")
    assert conn is not None and (conn.user, conn.address) == ("u", "db.example:3307")
    assert where == "DATA_SOURCE_NAME of /etc/default/prometheus-mysqld-exporter"
    assert (tmp_path / conn.password_file.lstrip("/")).read_text() == "pa@ss"

    cnf = tmp_path / "etc/mysqld_exporter/given.cnf"
    cnf.parent.mkdir(parents=True)
    cnf.write_text("[client]\nuser=cnf\npassword=x\nhost=10.0.0.5\nport=3310\n")
    unit.write_text(f"[Service]\nExecStart=/usr/bin/x --config.my-cnf {cnf}\n")  # a path already under --root
    conn, _ = mysql_from_host(_facts(tmp_path)) or (None, "")
    assert conn is not None and (conn.user, conn.address) == ("cnf", "10.0.0.5:3310")


def test_a_path_outside_the_root_is_not_read_and_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    unit = tmp_path / "etc/systemd/system/mysqld_exporter.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/x --config.my-cnf=/../../etc/passwd\n")
    assert mysql_from_host(_facts(tmp_path)) is None
    unit.write_text('[Service]\nEnvironment="DATA_SOURCE_NAME=u:p@tcp(127.0.0.1:3306)/"\n')
    conn, _ = mysql_from_host(_facts(tmp_path, dry_run=True)) or (None, "")
    assert conn is not None and not (tmp_path / "etc/obsplan").exists()


def test_last_run_goes_back_to_the_two_stage_run_s_middle_version() -> None:
    assert allowed_before(["2.48.1", "2.55.1"], "2.55.1") == "2.55.1"
    assert allowed_before(["2.48.1", "2.55.1"], None) == "2.48.1"
    assert allowed_before([None, "2.48.1"], None) == "2.48.1"
    assert allowed_before(["2.48.1"], "2.55.1") is None


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), min_size=1, max_size=6), st.integers(0, 5))
def test_last_run_never_below_the_floor(befores: list[tuple[int, int]], floor: int) -> None:
    versions = [f"{a}.{b}.0" for a, b in befores]
    got = allowed_before(versions, f"{floor}.0.0")
    allowed = [v for v in versions if Version.parse(v) >= Version.parse(f"{floor}.0.0")]
    assert got == (allowed[0] if allowed else None)
