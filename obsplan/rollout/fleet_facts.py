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
from obsplan.rollout.inventory.inventory_file import require_ssh_files
from obsplan.rollout.prepare import collect_facts
from obsplan.rollout.runner import BatchRequest

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def collect_to(inventory: Path, out: Path) -> tuple[list[Path], dict[str, str]]:
    """Write DIR/HOST.json for every host that answered; (files written, errors by host).

    Everything that can be checked here is checked before any host is contacted: the host names (they become
    file names), the controller's SSH files, and DIR (created when missing; an existing folder is written into
    again). A host that gives no facts this time keeps none that read as current: its DIR/HOST.json from an
    earlier collection is renamed HOST.json.stale (`status --facts` and `plan --facts` read `*.json` only)."""
    from obsplan.safeio.fsio import write_atomic

    hosts = load_inventory(inventory).hosts
    bad = [h.name for h in hosts if not SAFE_NAME.fullmatch(h.name)]
    if bad:
        raise ObsplanError(
            f"host name(s) unusable as a file name: {', '.join(repr(b) for b in bad)}",
            file=str(inventory),
            hint="names of letters, digits, '.', '_' and '-'",
        )
    require_ssh_files(hosts, str(inventory))
    facts_folder(out)
    req = BatchRequest("facts", "facts", Path(os.devnull), None, [], 0, "", [])
    facts, errors = collect_facts(req, hosts)
    written = []
    for name, f in facts.items():
        path = out / f"{name}.json"
        if f is not None:
            write_atomic(path, json.dumps(f.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
            written.append(path)
        elif path.is_file() and not path.is_symlink():
            path.replace(path.with_name(f"{name}.json.stale"))
            errors[name] = f"{errors.get(name, 'no facts')} (its earlier {path.name} is now {path.name}.stale)"
    return written, errors


def facts_folder(out: Path) -> None:
    """DIR for `facts --inventory -o DIR`: created when missing; anything but a folder there is bad input."""
    hint = "name a folder: one HOST.json is written in it per host"
    if out.exists() and not out.is_dir():
        raise ObsplanError("-o is not a folder", file=str(out), key="-o", hint=hint)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ObsplanError(
            f"cannot create the folder: {exc.strerror or exc}", file=str(out), key="-o", hint=hint
        ) from None


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
