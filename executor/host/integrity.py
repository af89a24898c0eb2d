"""Is an installed version still whole on disk? Host facts only: the version directory, `current`, exposed links.

A version directory deleted behind obsplan's back, or a `current` / `/usr/local/bin` link that dangles, makes
a step *not* up to date (the next apply reinstalls it), `status` report it, and `obsplan doctor` name it.
"""

from __future__ import annotations

import os

from obsplan.executor.artifacts.store import find_binary
from obsplan.executor.host.layout import Layout

from obsplan.lock.lockfile import Runtime


def install_problems(layout: Layout, component: str, runtime: Runtime, version: str | None) -> list[str]:
    """What is broken about `version` of `component` as installed (empty: intact, or nothing installed)."""
    if version is None:
        return []
    problems = []
    vdir = layout.version_dir(component, version)
    if not vdir.is_dir():
        problems.append(f"version directory {vdir} is missing")
    link = layout.current_link(component)
    if os.path.islink(link) and not link.exists():
        problems.append(f"{link} dangles (-> {os.readlink(link)})")
    for name, pattern in sorted(runtime.binaries.items()):
        exposed = layout.bin_dir / name
        wanted = name == runtime.service_binary or (vdir.is_dir() and find_binary(vdir, pattern) is not None)
        if os.path.islink(exposed) and not exposed.exists():
            problems.append(f"{exposed} dangles (-> {os.readlink(exposed)})")
        elif wanted and not os.path.lexists(exposed):
            problems.append(f"{exposed} is missing")
    return problems
