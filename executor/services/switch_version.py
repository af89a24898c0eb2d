"""`activate(version)`: switch the component's `current` link to an installed version, restart its service and
prove the new process serves that version. The one sequence behind an upgrade, an automatic rollback, a
manual rollback and the switch back after a failed one."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import obsplan.executor.artifacts.store as art
from obsplan.executor.host.layout import relative_symlink
from obsplan.executor.host.stepfacts import StepFacts
from obsplan.executor.services.managers import prepare_host_dirs
from obsplan.executor.stages.step_results import StepFailed

WRONG_VERSION_CHECKS = 5  # consecutive answers of a wrong version from the new pid before giving up

StageGuard = Callable[[str], AbstractContextManager[None]]


def _unjournalled(_name: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


def activate(facts: StepFacts, version: str, rendered: str | None = None, stage: StageGuard = _unjournalled) -> None:
    """Switch to `version` with the service definition `rendered` (default: rendered for `version`), restart,
    verify. `stage(name)` wraps each of "switch", "restart" and "verify" (a step journals them)."""
    with stage("switch"):
        switch_to(facts, version, facts.rendered(version) if rendered is None else rendered)
    old = facts.ctx.services.status(facts.c)
    with stage("restart"):
        facts.ctx.services.restart(facts.c)
    with stage("verify"):
        verify(facts, version, old.pid if old.running else None)


def switch_to(facts: StepFacts, version: str, rendered: str) -> None:
    """Atomic switch: binaries exposed, service definition written, `current` renamed over the old link."""
    layout, c = facts.ctx.layout, facts.c
    if not layout.version_dir(c, version).is_dir():
        raise StepFailed("version_missing", f"{layout.version_dir(c, version)} does not exist")
    created = prepare_host_dirs(c, facts.runtime, layout, version)
    unlinked = link_version(facts, version)
    facts.ctx.services.install_unit(c, rendered)
    facts.emit("switched", version=version, created=created, unlinked=unlinked)


def link_version(facts: StepFacts, version: str) -> list[str]:
    """`current` renamed over the old link, the version's binaries exposed in /usr/local/bin; the links of
    binaries this version lacks removed (returned)."""
    layout, c = facts.ctx.layout, facts.c
    vdir = layout.version_dir(c, version)
    relative_symlink(vdir, layout.current_link(c))
    current = layout.current_link(c)
    unlinked = []
    for name, pattern in facts.runtime.binaries.items():
        found = art.find_binary(vdir, pattern)
        if found is not None:
            relative_symlink(current / found.relative_to(vdir), layout.bin_dir / name)
        elif _owned_link(layout.bin_dir / name, layout.component_dir(c)):
            (layout.bin_dir / name).unlink()  # this version lacks it (trixie's prometheus: no promtool)
            unlinked.append(name)
    return unlinked


def _owned_link(path: Path, component_dir: Path) -> bool:
    """`path` is obsplan's link into the component's directory (a hand-placed file is never removed)."""
    if not path.is_symlink():
        return False
    target = Path(os.path.normpath(path.parent / os.readlink(path)))
    return target.is_relative_to(Path(os.path.normpath(component_dir)))


def verify(facts: StepFacts, version: str, old_pid: int | None) -> None:
    """Prove `version` serves: health endpoint, served build_info version (or binary), and a new PID."""
    c, window = facts.c, facts.ctx.window
    deadline = time.monotonic() + window
    last = "no answer"
    wrong = 0
    while True:
        st = facts.ctx.services.status(c)
        if st.running and st.pid is not None and st.pid != old_pid:
            if facts.healthy():
                served = facts.served_version(version)
                if served == version:
                    facts.emit("verified", version=version, pid=st.pid, health=facts.runtime.health_path)
                    return
                last = f"serves version {served!r}, expected {version}"
                wrong = wrong + 1 if served is not None else 0
                if wrong >= WRONG_VERSION_CHECKS:  # a new, healthy process answering another version
                    raise StepFailed("wrong_version_served", f"{c} (pid {st.pid}) is healthy but {last}", served=served)
            else:
                last = f"{facts.runtime.health_path} not healthy yet"
        elif st.given_up:
            raise StepFailed("service_failed", f"{c} did not stay up (state {st.state})", state=st.state)
        else:
            last = f"service state {st.state}, pid {st.pid} (old pid {old_pid})"
        if time.monotonic() >= deadline:
            raise StepFailed("health_timeout", f"{c} {version} not proven healthy within {window:.0f}s: {last}")
        time.sleep(0.2)
