"""Fast executor tests without real services: parsing, safe extraction, checksum refusal, input refusal,
rendering (checked with systemd-analyze and promtool when installed)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import obsplan.executor.apply.engine as engine
import obsplan.executor.artifacts.store as art
import pytest
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import normalise_version, parse_version_output
from obsplan.executor.reporters import Event, JsonLinesReporter, RecordingReporter
from obsplan.executor.services.managers import render_context, service_command
from obsplan.executor.services.supervisord import SupervisordManager
from obsplan.executor.services.systemd import SystemdManager
from obsplan.executor.state.metrics import write_metrics
from obsplan.executor.state.state_db import StateDB

from obsplan.kernel.errors import EXIT_USAGE, ObsplanError
from obsplan.lock.lockfile import Artifact, Lock
from obsplan.safeio.fsio import write_atomic
from tests.historyrows import Row, add_rows

from .conftest import Hop, build_lock, node_runtime, prometheus_runtime

REPO = Path(__file__).resolve().parents[2]


# -- version parsing ------------------------------------------------------------------------------------------
def test_version_output_from_either_stream() -> None:
    line = "prometheus, version 2.53.3+ds1 (branch: debian/sid, revision: 2.53.3+ds1-2)\n  build user: x\n"
    assert parse_version_output(line, "").version == "2.53.3"
    info = parse_version_output("", "mysqld_exporter, version 0.14.0 (branch: debian/sid, revision: 0.14.0-3+b5)\n")
    assert info is not None and (info.program, info.version) == ("mysqld_exporter", "0.14.0")
    assert parse_version_output("phpfpm_exporter, version 0.6.0 (branch: , revision: 0.6.0-1+b4)", "").branch == ""
    # Debian's unrelated `loki` genetics program and nginx exporter 0.x are not misread
    assert parse_version_output("loki 2.4.7_4\n", "loki: invalid option -- '-'\n") is None
    assert parse_version_output("NGINX Prometheus Exporter version=0.11.0-1+b4 commit= date=", "") is None
    assert normalise_version("v2.42.0+ds") == "2.42.0"


# -- safe extraction ------------------------------------------------------------------------------------------
def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            if m.isfile():
                m.size = len(data)
                tar.addfile(m, io.BytesIO(data))
            else:
                tar.addfile(m)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, link
    return m


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("/etc/passwd"), "absolute path"),
        (_member("top/../../evil"), "escapes"),
        (_member("top/link", tarfile.SYMTYPE, "../../outside"), "points outside"),
        (_member("top/abs", tarfile.SYMTYPE, "/etc/shadow"), "absolute"),
        (_member("top/hard", tarfile.LNKTYPE, "../x"), "points outside"),
        (_member("top/dev", tarfile.CHRTYPE), "device"),
    ],
)
def test_unsafe_tar_refused(tmp_path: Path, member: tarfile.TarInfo, message: str) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [_member("top/ok"), member])
    with pytest.raises(art.UnsafeArchive, match=message):
        art.extract_archive(archive, "tar.gz", tmp_path / "out", "ok")


def test_zip_traversal_refused_and_good_archives_extract(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../evil", "x")
    with pytest.raises(art.UnsafeArchive):
        art.extract_archive(bad, "zip", tmp_path / "out1", "x")
    good = tmp_path / "loki-linux-amd64.zip"
    with zipfile.ZipFile(good, "w") as zf:
        info = zipfile.ZipInfo("loki-linux-amd64")
        info.external_attr = 0o100755 << 16
        zf.writestr(info, "#!/bin/sh\n")
    art.extract_archive(good, "zip", tmp_path / "out2", "loki")
    assert os.access(tmp_path / "out2" / "loki-linux-amd64", os.X_OK)
    inner = _tar(tmp_path / "t.tar.gz", [_member("top/bin/tool"), _member("top/l", tarfile.SYMTYPE, "bin/tool")])
    comp = tmp_path / "opt"
    a = Artifact(url="http://x/t.tar.gz", filename="t.tar.gz", format="tar.gz", sha256="ab" * 32)
    assert art.ensure_extracted(inner, a, comp, "1.0.0", "tool") is True
    assert art.ensure_extracted(inner, a, comp, "1.0.0", "tool") is False  # never overwritten
    assert art.find_binary(comp / "1.0.0", "*/bin/tool") == comp / "1.0.0/top/bin/tool"
    other = a.model_copy(update={"sha256": "cd" * 32})
    with pytest.raises(ObsplanError, match="different artifact"):
        art.ensure_extracted(inner, other, comp, "1.0.0", "tool")


def test_checksum_mismatch_names_both_hashes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.tar.gz").write_bytes(b"tampered")
    expected = "0" * 64
    a = Artifact(url="http://unused/f.tar.gz", filename="f.tar.gz", format="tar.gz", sha256=expected)
    dl = tmp_path / "dl"
    with pytest.raises(art.ChecksumMismatch) as exc:
        art.ensure_download(a, dl, art.LocalDirSource(src), lambda total: ((lambda n: None), (lambda: None)))
    assert expected in str(exc.value) and art.sha256_file(src / "f.tar.gz") in str(exc.value)
    assert list(dl.iterdir()) == []


# -- refusing bad input -----------------------------------------------------------------------------------------
def _lock(tmp_path: Path, sha: str | None = "ab" * 32, from_version: str | None = "1.5.0") -> Path:
    h = Hop(from_version, "1.9.0", "http://127.0.0.1:9/node_exporter-1.9.0.linux-amd64.tar.gz", sha or "")
    path = build_lock(tmp_path / "lock.json", {"node_exporter": (node_runtime(19100), "exporters", [h])})
    if sha is None:
        data = json.loads(path.read_text())
        for a in data["plan"]["steps"][0]["artifacts"].values():
            a["sha256"], a["checksum_status"] = None, "missing"
        lock = Lock.model_validate(data).sealed()
        write_atomic(path, lock.to_json())
    return path


def test_edited_lock_refused_with_exit_2(tmp_path: Path) -> None:
    path = _lock(tmp_path)
    path.write_text(path.read_text().replace('"1.9.0"', '"1.9.9"'))
    with pytest.raises(ObsplanError) as exc:
        engine.apply(path, engine.ApplyOptions(root=tmp_path / "root"), RecordingReporter())
    assert exc.value.exit_code == EXIT_USAGE and "content_sha256" in str(exc.value)
    proc = subprocess.run(
        ["obsplan", "apply", str(path), "--root", str(tmp_path / "root")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "edited after it was generated" in proc.stderr
    assert not (tmp_path / "root").exists()


def test_missing_sha256_refused(tmp_path: Path) -> None:
    if shutil.which("supervisord") is None:
        pytest.skip("supervisord not installed")
    root = tmp_path / "root"
    report = engine.apply(_lock(tmp_path, sha=None), engine.ApplyOptions(root=root), rec := RecordingReporter())
    assert report.exit_code == 1
    assert report.results[0].reason == "missing_sha256"
    assert rec.find("step_failed")[0].metadata["reason"] == "missing_sha256"
    assert not (root / "opt").exists() and not (root / "var/cache").exists()


def test_host_off_plan_path_refused_with_way_out(tmp_path: Path) -> None:
    if shutil.which("supervisord") is None:
        pytest.skip("supervisord not installed")
    root = tmp_path / "root"
    layout = Layout(root)
    (layout.version_dir("node_exporter", "1.7.0")).mkdir(parents=True)
    os.symlink("1.7.0", layout.current_link("node_exporter"))
    report = engine.apply(_lock(tmp_path), engine.ApplyOptions(root=root), rec := RecordingReporter())
    assert report.exit_code == 1
    (r,) = report.results
    assert r.reason == "off_plan_path" and "--force" in r.detail["error"]
    with StateDB(layout.db_path) as db:  # host facts win: the observed version was recorded
        row = db.installed("node_exporter")
        assert row is not None and row["version"] == "1.7.0" and row["source"] == "observed:current_link"
    assert rec.find("host_drift")


# -- rendering --------------------------------------------------------------------------------------------------
def test_flags_chosen_per_version(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    (tmp_path / "etc/node_exporter").mkdir(parents=True)
    (tmp_path / "etc/node_exporter/web.yml").write_text("{}\n")
    rt = node_runtime(9100)
    assert f"--web.config.file={tmp_path}/etc/node_exporter/web.yml" in service_command(
        "node_exporter", rt, "1.5.0", layout
    )
    assert f"--web.config={tmp_path}/etc/node_exporter/web.yml" in service_command("node_exporter", rt, "1.4.0", layout)
    argv = service_command("prometheus", prometheus_runtime(9090), "2.55.1", layout)
    assert argv[1:] == [
        "--web.listen-address=:9090",
        f"--config.file={tmp_path}/etc/prometheus/prometheus.yml",
        f"--storage.tsdb.path={tmp_path}/var/lib/prometheus",
    ]


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    binary = layout.bin_dir / "node_exporter"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    mgr = SystemdManager(layout)
    text = mgr.render(render_context("node_exporter", node_runtime(9100), "1.9.0", layout))
    assert f"ExecStart={binary} --web.listen-address=:9100" in text
    unit = tmp_path / "node_exporter.service"
    unit.write_text(text)
    sup = SupervisordManager(layout).render(render_context("node_exporter", node_runtime(9100), "1.9.0", layout))
    assert "[program:node_exporter]" in sup and f"command={binary} --web.listen-address=:9100" in sup
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in proc.stderr.splitlines() if "node_exporter.service" in line]
    assert proc.returncode == 0 or not problems, proc.stderr


def test_alert_rules_pass_promtool_and_metrics_parse(tmp_path: Path) -> None:
    rules = REPO / "policies" / "alert-rules.yml"
    assert "obsplan_github_rate_limit_remaining" not in rules.read_text()  # nothing writes it: no rule reads it
    with StateDB(tmp_path / "state.db") as db:
        rows: list[Row] = [
            ("node_exporter", "s", "upgrade", "1.5.0", "1.9.0", True, "2026-01-01T00:00:00+00:00"),
            ("node_exporter", "s", "auto_rollback", "1.9.0", "1.5.0", True, "2026-01-01T00:00:01+00:00"),
        ]
        add_rows(db, "r", rows, row0={"duration": 1.5})
        write_metrics(db, tmp_path / "obsplan.prom")
    text = (tmp_path / "obsplan.prom").read_text()
    assert 'obsplan_rollbacks_total{component="node_exporter",kind="automatic",result="success"} 1.0' in text
    assert "obsplan_last_success_timestamp_seconds" in text
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    proc = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_json_lines_event_shape() -> None:
    buf = io.StringIO()
    JsonLinesReporter(buf).emit(Event("node_exporter", "verified", {"version": "1.9.0"}))
    obj = json.loads(buf.getvalue())
    assert set(obj) == {"timestamp", "component", "event", "metadata"}
    assert obj["metadata"] == {"version": "1.9.0"}


def test_retention_keeps_current_and_rollback_target(tmp_path: Path) -> None:
    from obsplan.executor.recovery.retention import retention
    from obsplan.executor.stages.step_context import Context

    layout = Layout(tmp_path)
    for i, v in enumerate(["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]):
        d = layout.version_dir("x", v)
        d.mkdir(parents=True)
        os.utime(d, (1_000_000 + i, 1_000_000 + i))  # old: beyond keep_days too
    os.symlink("1.2.0", layout.current_link("x"))  # current is not the newest (e.g. after a rollback)
    with StateDB(layout.db_path) as db:
        backup = tmp_path / "b"
        backup.mkdir()
        db.add_point(
            component="x",
            step_id="s",
            from_version="1.0.0",
            to_version="1.2.0",
            version_dir=None,
            backup_dir=str(backup),
            files=[],
            data_dir=None,
            floor=None,
            status="available",
        )
        ctx = Context(
            layout=layout,
            db=db,
            reporter=RecordingReporter(),
            services=None,
            client=None,  # type: ignore[arg-type]
            source=None,
            run_id="r",
            platform="linux-amd64",
            keep_versions=3,
            keep_days=30,
        )  # type: ignore[arg-type]
        removed = retention(ctx, "x")
    left = sorted(p.name for p in layout.component_dir("x").iterdir() if not p.is_symlink())
    assert left == ["1.0.0", "1.2.0"]  # the rollback target and the current version survive
    assert sorted(removed) == ["version:1.1.0", "version:1.3.0", "version:1.4.0"]


def test_console_reporter_plain_and_tty() -> None:
    from obsplan.executor.reporters import ConsoleReporter

    plain = io.StringIO()
    ConsoleReporter(plain, tty=False).emit(Event("node_exporter", "verified", {"version": "1.9.0"}))
    assert "node_exporter" in plain.getvalue() and "version=1.9.0" in plain.getvalue()
    rich_out = io.StringIO()
    rep = ConsoleReporter(rich_out, tty=True)
    advance, done = rep.progress("node_exporter", "node_exporter-1.9.0.linux-amd64.tar.gz", 100)
    advance(50)
    advance(50)
    done()
    rep.emit(Event("node_exporter", "step_failed", {"reason": "health_timeout"}))
    assert "health_timeout" in rich_out.getvalue()


def test_version_or_none_parses_or_says_none() -> None:
    from obsplan.kernel.versions import Version, version_or_none

    assert version_or_none("v2.55.1") == Version.parse("2.55.1")
    assert version_or_none("11.6.14+security-01") == Version.parse("11.6.14+security-01")
    assert [version_or_none(t) for t in (None, "", "dev", "1.2")] == [None, None, None, None]


def test_history_recorder_fills_the_bound_fields(tmp_path: Path) -> None:
    from obsplan.executor.stages.history_rows import HistoryRecorder

    with StateDB(tmp_path / "state.db") as db:
        step = HistoryRecorder(db, "r1", "node_exporter", "s1", started_at="2026-01-01T00:00:00+00:00")
        step.record("upgrade", "1.5.0", "1.9.0", success=False, error="boom", unverified="x.tar.gz unverified")
        HistoryRecorder(db, "r0", "loki", None, timed=False).record("host_drift", None, "3.0.0", success=True)
        rows = {r["component"]: dict(r) for r in db.history()}
    upgrade, drift = rows["node_exporter"], rows["loki"]
    assert (upgrade["run_id"], upgrade["step_id"], upgrade["kind"], upgrade["success"]) == ("r1", "s1", "upgrade", 0)
    assert (upgrade["from_version"], upgrade["to_version"], upgrade["error"]) == ("1.5.0", "1.9.0", "boom")
    assert upgrade["started_at"] == "2026-01-01T00:00:00+00:00" and upgrade["unverified"] == "x.tar.gz unverified"
    assert upgrade["duration_seconds"] is not None and upgrade["duration_seconds"] >= 0
    assert (drift["run_id"], drift["step_id"], drift["success"], drift["duration_seconds"]) == ("r0", None, 1, None)
