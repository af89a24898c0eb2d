"""Events and the injected reporters: console (rich on a TTY, plain lines otherwise), JSON lines, audit log,
and a recording reporter for tests.

Every reporter receives the same `Event` values; tests assert on recorded events, not on printed text.
Reporters are thread-safe (fast mode runs steps in doit's thread runner).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from obsplan.kernel.clock import now_iso
from obsplan.safeio.ownfiles import open_own


@dataclass(frozen=True)
class Event:
    component: str | None
    event: str
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "component": self.component,
            "event": self.event,
            "metadata": self.metadata,
        }


Advance = Callable[[int], None]


class Reporter:
    """Base reporter: receives events; `progress` returns a callback advancing a byte counter."""

    def emit(self, event: Event) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def progress(self, component: str, description: str, total: int | None) -> tuple[Advance, Callable[[], None]]:
        return (lambda n: None), (lambda: None)

    def close(self) -> None:
        return None


class RecordingReporter(Reporter):
    """Keeps every event in memory (for tests and for building a command's JSON answer)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def names(self, component: str | None = None) -> list[str]:
        return [e.event for e in self.events if component is None or e.component == component]

    def find(self, name: str, component: str | None = None) -> list[Event]:
        return [e for e in self.events if e.event == name and (component is None or e.component == component)]


class JsonLinesReporter(Reporter):
    """One JSON object per line: {"timestamp", "component", "event", "metadata"}."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), sort_keys=True, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class AuditLog(Reporter):
    """Appends every event as a JSON line to `<root>/var/log/obsplan/audit.jsonl`, flushed per line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        fd = open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "audit log")  # never through a link
        self._fh = os.fdopen(fd, "a", encoding="utf-8")

    def emit(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), sort_keys=True, default=str)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


_LEVEL_STYLE = {
    "failed": "red",
    "error": "red",
    "refused": "red",
    "warning": "bold yellow",
    "pending": "yellow",
    "rollback": "yellow",
    "done": "green",
    "up_to_date": "dim",
}


class ConsoleReporter(Reporter):
    """Human output: rich (colour, download progress bars) on a TTY, plain `time component event k=v` lines else."""

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._console = None
        self._progress = None
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._console = Console(file=stream)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=self._console,
                transient=True,
            )

    @staticmethod
    def format_plain(event: Event) -> str:
        ts = event.timestamp[11:19]
        meta = " ".join(f"{k}={v}" for k, v in sorted(event.metadata.items()) if v is not None and v != "")
        return f"{ts} {event.component or '-':<14} {event.event:<18} {meta}".rstrip()

    def emit(self, event: Event) -> None:
        line = self.format_plain(event)
        with self._lock:
            if self._console is not None:
                style = next((s for k, s in _LEVEL_STYLE.items() if k in event.event), None)
                self._console.print(line, style=style, markup=False, highlight=False)
            else:
                self.stream.write(line + "\n")
                self.stream.flush()

    def progress(self, component: str, description: str, total: int | None) -> tuple[Advance, Callable[[], None]]:
        if self._progress is None:
            return super().progress(component, description, total)
        progress = self._progress
        with self._lock:
            progress.start()
            task = progress.add_task(f"{component}: {description}", total=total)

        def advance(n: int) -> None:
            progress.update(task, advance=n)

        def done() -> None:
            with self._lock:
                progress.remove_task(task)
                if not progress.tasks:
                    progress.stop()

        return advance, done


class Fanout(Reporter):
    """Sends every event to several reporters (e.g. console + audit log)."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = list(reporters)

    def emit(self, event: Event) -> None:
        for r in self.reporters:
            r.emit(event)

    def progress(self, component: str, description: str, total: int | None) -> tuple[Advance, Callable[[], None]]:
        pairs = [r.progress(component, description, total) for r in self.reporters]

        def advance(n: int) -> None:
            for a, _ in pairs:
                a(n)

        def done() -> None:
            for _, d in pairs:
                d()

        return advance, done

    def close(self) -> None:
        for r in self.reporters:
            r.close()
