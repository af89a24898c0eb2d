"""What one `plan` run asks of the compiler, beyond the configuration files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from obsplan.lock.hostfacts import FactsInput


@dataclass
class Options:
    environment: str
    now: datetime
    offline: bool = False
    upgrade: bool = False
    upgrade_packages: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()
    facts: FactsInput | None = None  # `plan --facts`: the host's versions beat every other from-state

    def may_keep(self, name: str) -> bool:
        """Whether the previous lock's version of `name` is kept while it still fits (no `--upgrade[-package]`)."""
        return not self.upgrade and name not in self.upgrade_packages
