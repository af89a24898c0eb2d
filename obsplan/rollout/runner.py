"""Run one batch's hosts through the pyinfra worker subprocess and hand each host result back as it arrives."""

from __future__ import annotations

import contextlib
import ctypes
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obsplan.rollout.inventory.hosts import Host


@dataclass(frozen=True)
class BatchRequest:
    action: str  # apply | rollback
    rollout_id: str
    lock: Path
    bundle: Path | None
    lock_components: list[str]
    lock_format: int
    lock_obsplan_version: str
    apply_args: list[str]
    connect_timeout: int = 10
    wheelhouse: dict[str, Any] | None = None  # --bootstrap: bootstrap.prepare()'s description

    def payload(self, hosts: list[Host], extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "action": self.action,
            "rollout_id": self.rollout_id,
            "lock": str(self.lock),
            "bundle": str(self.bundle) if self.bundle else None,
            "lock_components": self.lock_components,
            "lock_format": self.lock_format,
            "lock_obsplan_version": self.lock_obsplan_version,
            "apply_args": self.apply_args,
            "connect_timeout": self.connect_timeout,
            "wheelhouse": self.wheelhouse,
            "hosts": [{**h.model_dump(), **(extra or {}).get(h.name, {})} for h in hosts],
        }


def _die_with_parent() -> None:
    """The worker must not outlive a killed rollout (Linux: PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class WorkerSession:
    """One worker subprocess for a whole rollout: every host connected once, kept for the next batch (and the
    facts pass before the first). A worker that died is started again for the next request."""

    def __init__(self, hosts: list[Host], connect_timeout: int = 10) -> None:
        self.hosts = hosts
        self.connect_timeout = connect_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.initialised = False  # the worker was sent its hosts
        # a file, not a pipe: a chatty worker can never block on it (closed by close())
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115

    def spawn(self) -> None:
        """Start the worker now (its Python start-up and SSH imports overlap the caller's own work); it waits for
        its hosts until the first request."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "obsplan.rollout.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errors,
                text=True,
                preexec_fn=_die_with_parent,
            )
            self.initialised = False

    def _start(self) -> subprocess.Popen[str]:
        self.spawn()
        assert self.proc is not None
        if not self.initialised:
            init = {"hosts": [h.model_dump() for h in self.hosts], "connect_timeout": self.connect_timeout}
            self._send(self.proc, init)
            self.initialised = True
        return self.proc

    @staticmethod
    def _send(proc: subprocess.Popen[str], data: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(data) + "\n")
        proc.stdin.flush()

    def run(
        self,
        req: BatchRequest,
        hosts: list[Host],
        extra: dict[str, dict[str, Any]] | None = None,
        on_progress: Callable[[str, str], None] | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (host name, result) as each host finishes; a host the worker never reported is 'failed'."""
        seen: set[str] = set()
        try:
            proc = self._start()
            self._send(proc, req.payload(hosts, extra))
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("done"):
                    break
                if "result" in msg:
                    seen.add(msg["host"])
                    yield msg["host"], msg["result"]
                elif on_progress is not None and "progress" in msg:
                    on_progress(msg["host"], msg["progress"])
        except (BrokenPipeError, OSError):
            pass
        for h in hosts:
            if h.name not in seen:
                yield h.name, {"status": "failed", "reason": f"the SSH worker ended without a result: {self._tail()}"}

    def _tail(self) -> str:
        self.errors.seek(0)
        return self.errors.read()[-500:]

    def close(self) -> None:
        if self.proc is not None:
            if not self.initialised:  # started early, never used (bad input): no host to disconnect
                self.proc.kill()
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self.errors.close()


def run_batch(
    req: BatchRequest,
    hosts: list[Host],
    extra: dict[str, dict[str, Any]] | None = None,
    on_progress: Callable[[str, str], None] | None = None,
    session: WorkerSession | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (host name, result) as each host finishes: through `session`, else a worker of its own."""
    if session is not None:
        yield from session.run(req, hosts, extra, on_progress)
        return
    own = WorkerSession(hosts, req.connect_timeout)
    try:
        yield from own.run(req, hosts, extra, on_progress)
    finally:
        own.close()
