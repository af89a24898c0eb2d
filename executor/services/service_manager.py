"""The one small interface every service manager implements (`ServiceManager`), the status it reports, and
the unit writer the implementations share. A leaf: the implementations import it, never the factory
(`managers.make_service_manager`), so no import goes round in a circle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ServiceStatus:
    state: str  # RUNNING, STARTING, BACKOFF, FATAL, EXITED, STOPPED, ABSENT, UNKNOWN (supervisord names)
    pid: int | None

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"

    @property
    def given_up(self) -> bool:
        """The manager stopped trying: waiting longer for health cannot succeed."""
        return self.state in ("FATAL", "EXITED", "ABSENT")


class ServiceManager(Protocol):
    name: str

    def reachable(self) -> tuple[bool, str]: ...
    def definition_path(self, service: str) -> Path: ...
    def render(self, ctx: dict[str, Any]) -> str: ...
    def install_unit(self, service: str, rendered: str) -> bool: ...
    def remove_unit(self, service: str) -> None: ...
    def restart(self, service: str) -> None: ...
    def stop(self, service: str) -> None: ...
    def status(self, service: str) -> ServiceStatus: ...


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write `text` to `path` (atomically, with `mode`) unless it already holds it; True when it was written."""
    from obsplan.safeio.fsio import write_atomic

    if path.is_file() and path.read_text() == text:
        return False
    write_atomic(path, text)
    path.chmod(mode)
    return True
