"""Day-two executor pieces without real binaries: seed 000's sqlite3 queries, alert rules vs. written metrics,
--phase refusal, matrix-aware binding data, retention from the lock, host facts, corrupt archives."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import obsplan.executor.apply.binding as binding
import obsplan.executor.apply.engine as engine
import obsplan.executor.apply.plan_queries as plan_queries
import pytest
from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.resolve.fromrules import refuse_from
from obsplan.executor import queries
from obsplan.executor.host.facts_collect import collect
from obsplan.executor.reporters import RecordingReporter
from obsplan.executor.state.metrics import write_metrics
from obsplan.executor.state.state_db import StateDB

from obsplan import __version__
from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.lock.hostfacts import HostFacts
from obsplan.lock.lockfile import (
    Artifact,
    ComponentLock,
    FromRefusal,
    HostPolicy,
    Lock,
    Plan,
    Reason,
    SourceInfo,
    Step,
    load_lock,
)
from obsplan.safeio.fsio import write_atomic
from tests.historyrows import Row, add_rows
from tests.static_server import start_static_server

from .conftest import PLATFORM, free_port, node_runtime, prometheus_runtime

REPO = Path(__file__).resolve().parents[2]
SEED_QUERIES = [  # seed 000, "Monitoring" section, verbatim
    "SELECT component, version FROM installed_components;",
    "SELECT component, from_version, to_version, success\n   FROM upgrade_history ORDER BY upgraded_at DESC LIMIT 5;",
    "SELECT component,\n          ROUND(100.0 * SUM(success) / COUNT(*), 2) as success_rate\n"
    "   FROM upgrade_history GROUP BY component;",
]


def _query(db: Path, sql: str) -> str:
    if shutil.which("sqlite3"):
        proc = subprocess.run(["sqlite3", str(db), sql], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    with sqlite3.connect(db) as conn:
        return "\n".join("|".join(str(c) for c in row) for row in conn.execute(sql))


def _history(db: StateDB) -> None:
    db.set_installed("node_exporter", "1.9.0", previous="1.5.0")
    rows: list[Row] = [
        ("node_exporter", "a", "upgrade", "1.5.0", "1.9.0", True, "2026-01-01T00:00:00+00:00"),
        ("prometheus", "b", "upgrade", "2.55.1", "3.5.0", False, "2026-01-01T00:01:00+00:00"),
        ("prometheus", "b", "auto_rollback", "3.5.0", "2.55.1", True, "2026-01-01T00:01:30+00:00"),
        ("loki", "c", "interrupted", None, "3.0.0", False, "2026-01-01T00:02:00+00:00"),
    ]
    add_rows(db, "r1", rows, row0={"duration": 1.5}, row1={"error": "x"})


def test_seed_000_queries_work_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateDB(path) as db:
        _history(db)
    assert _query(path, SEED_QUERIES[0]).strip() == "node_exporter|1.9.0"
    recent = _query(path, SEED_QUERIES[1]).strip().splitlines()
    assert recent[0] == "loki||3.0.0|0" and recent[-1] == "node_exporter|1.5.0|1.9.0|1"
    assert "node_exporter|100.0" in _query(path, SEED_QUERIES[2])


def test_upgraded_at_is_added_to_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the upgrade_history of the first release: no unverified, no upgraded_at
        conn.execute(
            "CREATE TABLE upgrade_history (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, component "
            "TEXT NOT NULL, step_id TEXT, kind TEXT NOT NULL DEFAULT 'upgrade', from_version TEXT, to_version "
            "TEXT, success INTEGER NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, duration_seconds "
            "REAL, error TEXT)"
        )
        conn.execute("INSERT INTO upgrade_history (component, success, started_at) VALUES ('x', 1, '2025')")
    StateDB(path).close()
    assert _query(path, SEED_QUERIES[1]).strip() == "x|||1"


def test_every_alert_rule_reads_a_metric_obsplan_writes(tmp_path: Path) -> None:
    with StateDB(tmp_path / "state.db") as db:
        _history(db)
        write_metrics(db, tmp_path / "obsplan.prom")
    text = (tmp_path / "obsplan.prom").read_text()
    rules = re.findall(r"expr: (.*)", (REPO / "policies" / "alert-rules.yml").read_text())
    assert len(rules) >= 3
    for expr in rules:
        names = set(re.findall(r"\b(obsplan_[a-z_]+)\b", expr))
        assert names, expr
        for name in names:
            assert re.search(rf"^{name}\{{", text, re.M), f"{name} (read by `{expr}`) is not written"
    # a failed step is a failed attempt; a run that died mid-step is neither a failure nor a manual rollback
    assert 'obsplan_upgrade_attempts_total{component="prometheus",result="failed"} 1.0' in text
    assert 'obsplan_upgrade_attempts_total{component="loki",result="interrupted"} 1.0' in text
    assert 'component="loki",kind="manual"' not in text


def _art(name: str) -> Artifact:
    return Artifact(url=f"http://127.0.0.1:9/{name}", filename=name, format="tar.gz", sha256="0" * 64)


def _lock(path: Path, policy: HostPolicy | None = None) -> Path:
    """exporters: node_exporter 1.9.0; core: prometheus 2.55.1 (requires the exporter) → 3.5.0."""
    node = Step(
        id="node_exporter@1.9.0",
        component="node_exporter",
        from_version=None,
        to_version="1.9.0",
        phase="exporters",
        requires=[],
        risk="low",
        reasons=[],
        artifacts={PLATFORM: _art("n.tar.gz")},
    )
    p1 = Step(
        id="prometheus@2.55.1",
        component="prometheus",
        from_version="2.48.1",
        to_version="2.55.1",
        phase="core",
        requires=[node.id],
        risk="low",
        reasons=[],
        artifacts={PLATFORM: _art("p1.tar.gz")},
    )
    p2 = Step(
        id="prometheus@3.5.0",
        component="prometheus",
        from_version="2.55.1",
        to_version="3.5.0",
        phase="core",
        requires=[p1.id],
        risk="high",
        reasons=[Reason(code="x", detail="y")],
        artifacts={PLATFORM: _art("p2.tar.gz")},
        refuse_from=[FromRefusal(rule="prometheus-3-via-2.55", versions="<2.55.0", reason="hop")],
    )
    src = SourceInfo(kind="snapshot", as_of=None)
    comps = {
        "node_exporter": ComponentLock(
            version="1.9.0",
            current=None,
            strategy="latest",
            github_repo=None,
            source=src,
            artifacts={},
            runtime=node_runtime(free_port()),
        ),
        "prometheus": ComponentLock(
            version="3.5.0",
            current="2.48.1",
            strategy="latest",
            github_repo=None,
            source=src,
            artifacts={},
            runtime=prometheus_runtime(free_port()),
        ),
    }
    lock = Lock(
        format_version=1,
        obsplan_version="0.1.0",
        environment="t",
        platforms=[PLATFORM],
        inputs={},
        components=comps,
        plan=Plan(phases=["exporters", "core"], steps=[node, p1, p2]),
        host_policy=policy or HostPolicy(),
    ).sealed()
    write_atomic(path, lock.to_json())
    return path


def test_phase_before_its_requirements_is_refused_naming_them(tmp_path: Path) -> None:
    lock = _lock(tmp_path / "l.lock")
    root = tmp_path / "root"
    with pytest.raises(ObsplanError) as err:
        engine.apply(lock, engine.ApplyOptions(root=root, phase="core"), RecordingReporter())
    assert err.value.exit_code == 1
    assert "exporters (node_exporter@1.9.0)" in str(err.value) and "--phase exporters" in str(err.value)
    assert not (root / "var/lib/obsplan/state.db").exists()  # nothing changed
    proc = subprocess.run(
        [sys.executable, "-m", "obsplan", "apply", str(lock), "--root", str(root), "--phase", "core"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "unfinished earlier phase" in proc.stderr, proc.stderr


def test_refuse_from_follows_the_shipped_matrix() -> None:
    from obsplan.compiler.config.model_errors import parse_yaml

    matrix = MatrixFile.model_validate(parse_yaml((REPO / "policies/matrix.yaml").read_text(), "matrix.yaml"))
    rules = {r.rule: str(r.versions) for r in refuse_from("prometheus", Version.parse("3.5.0"), False, matrix)}
    assert rules == {"prometheus-3-via-2.55": "<2.55.0", "no_downgrade": ">3.5.0"}
    pinned_down = refuse_from("prometheus", Version.parse("2.50.0"), True, matrix)
    assert [(r.rule, str(r.versions)) for r in pinned_down] == [("prometheus-3-rollback-floor", ">=3.0.0")]


def test_binding_start_step_and_refusals(tmp_path: Path) -> None:
    lock = load_lock(_lock(tmp_path / "l.lock"))
    chain = plan_queries.component_chains(lock)["prometheus"]
    ids = {s.id for s in chain}
    assert binding.start_step(chain, ids, "2.50.0").id == "prometheus@2.55.1"  # host between: first hop still runs
    assert binding.start_step(chain, ids, "2.60.0").id == "prometheus@3.5.0"  # host past the hop
    assert binding.refusal(chain[1], "2.50.0") is not None  # 2.50 → 3.5 would skip the required hop
    assert binding.refusal(chain[1], "2.60.0") is None


def _prometheus_only(path: Path) -> Path:
    lock = load_lock(_lock(path))
    down = FromRefusal(rule="no_downgrade", versions=">3.5.0", reason="not pinned")
    steps = [
        s.model_copy(
            update={
                "requires": [r for r in s.requires if r.startswith("prometheus")],
                "refuse_from": [*(s.refuse_from or []), down],
            }
        )
        for s in lock.plan.steps
        if s.component == "prometheus"
    ]
    lock = lock.model_copy(
        update={"plan": Plan(phases=["core"], steps=steps), "components": {"prometheus": lock.components["prometheus"]}}
    ).sealed()
    write_atomic(path, lock.to_json())
    return path


def _host_runs(root: Path, version: str) -> None:
    (root / "opt/obsplan/prometheus" / version).mkdir(parents=True)
    (root / "opt/obsplan/prometheus/current").symlink_to(version)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("2.50.0", ["would_run", "would_run"]), ("2.60.0", ["up_to_date", "would_run"]), ("3.6.0", None)],
)
def test_apply_follows_the_host_when_the_matrix_allows(tmp_path: Path, host: str, expected: list[str] | None) -> None:
    lock = _prometheus_only(tmp_path / "l.lock")
    root = tmp_path / "root"
    _host_runs(root, host)
    rec = RecordingReporter()
    report = engine.apply(lock, engine.ApplyOptions(root=root, dry_run=True, service_manager="supervisord"), rec)
    if expected is not None:
        assert [r.status for r in report.results] == expected and report.exit_code == 0
        assert rec.find("host_drift", "prometheus")[0].metadata["host_version"] == host
        return
    assert report.exit_code == 1 and report.results[0].reason == "off_plan_path"  # 3.6.0 → 3.5.0: a downgrade
    assert rec.find("host_drift_refused", "prometheus")[0].metadata["rule"] == "no_downgrade"
    assert 'current: {prometheus: "3.6.0"}' in report.results[0].detail["error"]  # a line to paste


def test_retention_comes_from_the_lock_and_flags_override(tmp_path: Path) -> None:
    lock = load_lock(_lock(tmp_path / "l.lock", HostPolicy(keep_versions=5, retention_days=7)))
    opts = engine.with_host_policy(engine.ApplyOptions(), lock)
    assert (opts.keep_versions, opts.keep_days) == (5, 7.0)
    opts = engine.with_host_policy(engine.ApplyOptions(keep_versions=2), lock)
    assert (opts.keep_versions, opts.keep_days) == (2, 7.0)


def test_facts_of_an_empty_root_and_of_a_lock(tmp_path: Path) -> None:
    facts = collect(tmp_path)
    assert "prometheus" in facts.components and "grafana" in facts.components  # the built-in catalog
    assert all(c.installed is None and not c.managed for c in facts.components.values())
    out = tmp_path / "facts.json"
    lock = _lock(tmp_path / "l.lock")
    proc = subprocess.run(
        [sys.executable, "-m", "obsplan", "facts", "--root", str(tmp_path), "--lock", str(lock), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    parsed = HostFacts.model_validate(json.loads(out.read_text()))
    assert sorted(parsed.components) == ["node_exporter", "prometheus"]
    assert parsed.format == 1 and parsed.platform == PLATFORM and parsed.obsplan_version == __version__
    assert parsed.components["node_exporter"].observed.served.startswith("no node_exporter_build_info answer")


def test_corrupt_archive_is_a_failed_step(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    data = gzip.compress(b"x" * 50_000)[:200]  # truncated: gzip/tar cannot read it, but its sha256 is in the lock
    (www / "node_exporter-1.9.0.tar.gz").write_bytes(data)
    import hashlib

    static = start_static_server(www)
    try:
        art = Artifact(
            url=f"{static.url}/node_exporter-1.9.0.tar.gz",
            filename="node_exporter-1.9.0.tar.gz",
            format="tar.gz",
            sha256=hashlib.sha256(data).hexdigest(),
        )
        step = Step(
            id="node_exporter@1.9.0",
            component="node_exporter",
            from_version=None,
            to_version="1.9.0",
            phase="exporters",
            requires=[],
            risk="low",
            reasons=[],
            artifacts={PLATFORM: art},
        )
        comp = ComponentLock(
            version="1.9.0",
            current=None,
            strategy="latest",
            github_repo=None,
            source=SourceInfo(kind="snapshot", as_of=None),
            artifacts={PLATFORM: art},
            runtime=node_runtime(free_port()),
        )
        lock = Lock(
            format_version=1,
            obsplan_version="0.1.0",
            environment="t",
            platforms=[PLATFORM],
            inputs={},
            components={"node_exporter": comp},
            plan=Plan(phases=["exporters"], steps=[step]),
        ).sealed()
        path = tmp_path / "l.lock"
        write_atomic(path, lock.to_json())
        root = tmp_path / "root"
        report = engine.apply(path, engine.ApplyOptions(root=root, service_manager="supervisord"), RecordingReporter())
        assert report.exit_code == 1
        assert report.results[0].status == "failed" and "not a readable tar.gz" in report.results[0].detail["error"]
        again = engine.apply(path, engine.ApplyOptions(root=root, service_manager="supervisord"), RecordingReporter())
        assert again.results[0].status == "failed"
    finally:
        static.stop()
    rows = queries.history(root)
    assert {r["kind"] for r in rows} == {"upgrade"} and not any(r["success"] for r in rows)  # never "interrupted"
    text = (root / "var/lib/obsplan/metrics/obsplan.prom").read_text()
    assert 'obsplan_upgrade_attempts_total{component="node_exporter",result="failed"} 2.0' in text
    assert "obsplan_rollbacks_total{" not in text


def test_backups_of_used_rollback_points_are_pruned_by_the_retention_rule(tmp_path: Path) -> None:
    import os
    import time

    import httpx
    from obsplan.executor.artifacts.store import HttpSource
    from obsplan.executor.host.layout import Layout
    from obsplan.executor.recovery.retention import prune_used_backups
    from obsplan.executor.services.supervisord import SupervisordManager
    from obsplan.executor.stages.step_context import Context

    layout = Layout(tmp_path)
    with StateDB(layout.db_path) as db, httpx.Client() as client:
        ids, dirs = [], []
        for i in range(4):
            backup = layout.backups / "node_exporter" / f"b{i}"
            backup.mkdir(parents=True)
            dirs.append(backup)
            ids.append(
                db.add_point(
                    component="node_exporter",
                    step_id=f"s{i}",
                    from_version=f"1.{i}.0",
                    to_version=f"1.{i + 1}.0",
                    version_dir=None,
                    backup_dir=str(backup),
                    files=[],
                    data_dir=None,
                    floor=None,
                    status="used",
                )
            )
        old = time.time() - 10 * 86400
        os.utime(dirs[2], (old, old))  # the second newest is older than retention_days
        ctx = Context(
            layout=layout,
            db=db,
            reporter=RecordingReporter(),
            services=SupervisordManager(layout),
            client=client,
            source=HttpSource(client),
            run_id="r",
            platform=PLATFORM,
            keep_versions=3,
            keep_days=7.0,
        )
        removed = prune_used_backups(ctx, "node_exporter", time.time())
        assert sorted(removed) == [f"used_point:{ids[0]}", f"used_point:{ids[2]}"]
        assert [d.exists() for d in dirs] == [False, True, False, True]
        assert [p.id for p in db.points("node_exporter", ("expired",))] == [ids[2], ids[0]]
