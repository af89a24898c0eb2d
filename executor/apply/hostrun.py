"""The skeleton every run that changes a host shares (`apply`, `rollback`): the apply lock held, the state
database and the audit log open for the run, the run recorded, metrics written at its end, all closed whatever
happens; and an HTTP client of our own when the caller gave none."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from obsplan.executor.apply.hostlock import apply_lock
from obsplan.executor.host.layout import Layout
from obsplan.executor.reporters import AuditLog, Fanout, Reporter
from obsplan.executor.state.metrics import write_metrics
from obsplan.executor.state.state_db import StateDB

from obsplan.safeio.ownfiles import check_sqlite, refuse_link


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def http_client(client: httpx.Client | None) -> Iterator[httpx.Client]:
    """The caller's client (left open), else one of our own, closed on exit."""
    if client is not None:
        yield client
        return
    own = httpx.Client(timeout=10.0, trust_env=False)
    try:
        yield own
    finally:
        own.close()


@dataclass
class HostRun:
    layout: Layout
    db: StateDB
    reporter: Reporter  # the caller's reporter and the audit log
    run_id: str

    def start(self, command: str, lock_sha256: str, mode: str) -> None:
        self.db.start_run(self.run_id, command, lock_sha256, mode)

    def finish(self, status: str) -> None:
        self.db.finish_run(self.run_id, status)
        write_metrics(self.db, self.layout.metrics_path)


def refuse_own_links(layout: Layout) -> None:
    """Exit 2 naming the file when one of obsplan's own files is a link, or a directory of them resolves outside
    the root: checked before anything is created, locked or written."""
    for path, what in layout.own_files().items():
        if path == layout.db_path:
            check_sqlite(path, what)
        else:
            refuse_link(path, what)
    _ = layout.backups  # resolved inside the root, or exit 2


@contextlib.contextmanager
def host_run(layout: Layout, command: str, reporter: Reporter, run_id: str) -> Iterator[HostRun]:
    """Hold the apply lock for `command`, open the state database (first: a broken database stops here, before
    anything is opened) and the audit log; both are closed when the run ends, however it ends."""
    refuse_own_links(layout)
    with apply_lock(layout, command):
        db = StateDB(layout.db_path)
        audit = AuditLog(layout.audit_path)
        try:
            yield HostRun(layout, db, Fanout(reporter, audit), run_id)
        finally:
            db.close()
            audit.close()
