"""The fleet's facts: `obsplan facts --inventory I -o DIR` collects every host's `obsplan facts` over the
rollout's SSH path into DIR/HOST.json, and `obsplan status --facts DIR [--lock L]` prints them as one table,
host × component: served version, the lock's target, and the drift between them ("what runs where?")."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import version_or_none
from obsplan.lock.hostfacts import HostFacts, facts_files, load_facts
from obsplan.lock.lockfile import Lock
from obsplan.rollout.inventory.hosts import load_inventory
from obsplan.rollout.prepare import collect_facts
from obsplan.rollout.runner import BatchRequest

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def collect_to(inventory: Path, out: Path) -> tuple[list[Path], dict[str, str]]:
    """Write DIR/HOST.json for every host that answered; (files written, errors by host)."""
    from obsplan.safeio.fsio import write_atomic

    hosts = load_inventory(inventory).hosts
    bad = [h.name for h in hosts if not SAFE_NAME.fullmatch(h.name)]
    if bad:
        raise ObsplanError(
            f"host name(s) unusable as a file name: {', '.join(repr(b) for b in bad)}",
            file=str(inventory),
            hint="names of letters, digits, '.', '_' and '-'",
        )
    req = BatchRequest("facts", "facts", Path(os.devnull), None, [], 0, "", [])
    facts, errors = collect_facts(req, hosts)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, f in facts.items():
        if f is not None:
            path = out / f"{name}.json"
            write_atomic(path, json.dumps(f.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
            written.append(path)
    return written, errors


def _drift(served: str | None, target: str | None, has: bool) -> str:
    if target is None:
        return ""
    if not has:
        return "not installed"
    if served is None:
        return "not serving"
    s, t = version_or_none(served), version_or_none(target)
    if s is None or t is None or s == t:
        return "in sync" if served == target else "differs"
    return "behind the lock" if s < t else "ahead of the lock"


def rows(directory: Path, lock: Lock | None) -> list[dict[str, Any]]:
    """One row per host and component (the lock's components, else those the host has)."""
    out = []
    for path in facts_files((directory,)):
        facts: HostFacts = load_facts(path)
        names = sorted(lock.components) if lock is not None else sorted(facts.components)
        for name in names:
            c = facts.components.get(name)
            has = c is not None and bool(c.installed or c.linked or c.served)
            if lock is None and not has:
                continue
            target = lock.components[name].version if lock is not None else None
            served = c.served if c is not None else None
            out.append(
                {
                    "host": path.stem,
                    "component": name,
                    "installed": c.installed if c is not None else None,
                    "served": served,
                    "target": target,
                    "drift": _drift(served, target, has),
                }
            )
    return out


def table(data: list[dict[str, Any]]) -> str:
    cols = ("host", "component", "installed", "served", "target", "drift")
    widths = {c: max([len(c)] + [len(str(r[c] or "-")) for r in data]) for c in cols}
    lines = ["  ".join(f"{c:<{widths[c]}}" for c in cols).rstrip()]
    lines += ["  ".join(f"{str(r[c] or '-'):<{widths[c]}}" for c in cols).rstrip() for r in data]
    return "\n".join(lines) + "\n"
