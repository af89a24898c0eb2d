"""Metrics for node_exporter's textfile collector, derived from the state DB and written atomically."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from obsplan.executor.state.state_db import StateDB
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.openmetrics.exposition import ALLOWUTF8
from prometheus_client.registry import Collector

from obsplan.safeio.fsio import write_atomic
from obsplan.safeio.ownfiles import refuse_link

ROLLBACK_KINDS = {"auto_rollback": "automatic", "rollback": "manual"}


class _StateCollector(Collector):
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def collect(self):  # type: ignore[no-untyped-def]
        attempts = CounterMetricFamily(
            "obsplan_upgrade_attempts", "Upgrade steps attempted, by result.", labels=["component", "result"]
        )
        rollbacks = CounterMetricFamily(
            "obsplan_rollbacks", "Rollbacks executed (automatic or manual).", labels=["component", "kind", "result"]
        )
        durations = SummaryMetricFamily(
            "obsplan_upgrade_duration_seconds", "Duration of successful upgrade steps.", labels=["component"]
        )
        last_success = GaugeMetricFamily(
            "obsplan_last_success_timestamp_seconds",
            "Unix time of the last successful upgrade step.",
            labels=["component"],
        )
        installed = GaugeMetricFamily(
            "obsplan_installed_info", "Version installed by obsplan (always 1).", labels=["component", "version"]
        )
        for row in self.db.attempt_counts():
            result = "success" if row["success"] else "failed"
            if row["kind"] == "upgrade":
                attempts.add_metric([row["component"], result], row["n"])
                if row["success"]:
                    durations.add_metric([row["component"]], row["n"], row["total_seconds"] or 0.0)
                    if row["last"]:
                        last_success.add_metric([row["component"]], datetime.fromisoformat(row["last"]).timestamp())
            elif row["kind"] in ROLLBACK_KINDS:
                rollbacks.add_metric([row["component"], ROLLBACK_KINDS[row["kind"]], result], row["n"])
            elif row["kind"] == "interrupted":  # a run died mid-step (resumed later): neither failure nor rollback
                attempts.add_metric([row["component"], "interrupted"], row["n"])
        for row in self.db.all_installed():
            if row["version"]:
                installed.add_metric([row["component"], row["version"]], 1)
        yield from (attempts, rollbacks, durations, last_success, installed)


def write_metrics(db: StateDB, path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(_StateCollector(db))
    refuse_link(path, "metrics file")
    # a fresh temp file (O_EXCL) renamed over the old one, readable by node_exporter's textfile collector
    write_atomic(path, generate_latest(registry, ALLOWUTF8), mode=0o644)
