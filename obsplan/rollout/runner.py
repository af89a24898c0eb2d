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

from obsplan.rollout.inventory import Host


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


def run_batch(
    req: BatchRequest,
    hosts: list[Host],
    extra: dict[str, dict[str, Any]] | None = None,
    on_progress: Callable[[str, str], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (host name, result) as each host finishes; a host the worker never reported is 'failed'."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty worker can never block on it
        proc = subprocess.Popen(
            [sys.executable, "-m", "obsplan.rollout.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            preexec_fn=_die_with_parent,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(req.payload(hosts, extra)))
        proc.stdin.close()
        seen: set[str] = set()
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "result" in msg:
                seen.add(msg["host"])
                yield msg["host"], msg["result"]
            elif on_progress is not None and "progress" in msg:
                on_progress(msg["host"], msg["progress"])
        proc.stdout.close()
        proc.wait()
        errors.seek(0)
        err = errors.read()
    for h in hosts:
        if h.name not in seen:
            yield h.name, {"status": "failed", "reason": f"the SSH worker ended without a result: {err[-500:]}"}
