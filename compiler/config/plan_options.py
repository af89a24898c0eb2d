"""What one `plan` run asks of the compiler beyond the configuration files: the plan flags, spelled once.

The CLI builds `Options` directly from its flags; `compiler/run.py` and every stage read it as it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only `plan --facts` reads host facts (their models are not built otherwise)
    from obsplan.lock.hostfacts import FactsInput


@dataclass(frozen=True)
class Options:
    environment: str
    now: datetime
    offline: bool = False  # never touch the network (the environment's `offline: true` also sets it)
    upgrade: bool = False  # re-resolve every component instead of keeping locked versions
    upgrade_packages: frozenset[str] = frozenset()  # re-resolve these components
    allow: frozenset[str] = frozenset()  # overridable matrix rules let through
    facts: FactsInput | None = None  # `plan --facts`: the host's versions beat every other from-state
    previous_lock: Path | None = None  # the lock this plan replaces (kept versions; its folder's locks are read)
    advisory_dirs: tuple[Path, ...] = ()  # `plan --advisories`: added to the policy's advisory sources

    def may_keep(self, name: str) -> bool:
        """Whether the previous lock's version of `name` is kept while it still fits (no `--upgrade[-package]`)."""
        return not self.upgrade and name not in self.upgrade_packages
