"""Is the step already done on the host (doit `uptodate`)? Reads facts only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obsplan.executor.host.integrity import install_problems

from obsplan.kernel.errors import ObsplanError

if TYPE_CHECKING:
    from obsplan.executor.stages.step_runner import StepRunner


def reason(r: StepRunner, link: str | None) -> str | None:
    """Why the step is done: `already_past` (the host runs a later version of its chain), `up_to_date` (the
    target is linked, intact, its definition and files as rendered, and serves); else None. `link`: the host's."""
    if r.ctx.db is not None and r.ctx.db.step_unfinished(r.step.id):
        return None
    if link is not None and link != r.step.to_version:
        later = [s.to_version for s in r.chain[r.chain.index(r.step) + 1 :]]
        return "already_past" if link in later else None
    intact = not install_problems(r.ctx.layout, r.c, r.runtime, link)  # deleted behind our back?
    done = link == r.step.to_version and intact and _definition_current(r)
    return "up_to_date" if done and r.served_version(r.step.to_version) == r.step.to_version else None


def _definition_current(r: StepRunner) -> bool:
    definition = r.ctx.services.definition_path(r.c)
    try:
        same_unit = definition.is_file() and definition.read_text() == r.rendered(r.step.to_version)
        return same_unit and r.files_current(r.step.to_version)
    except ObsplanError:  # e.g. an unreadable password file: not done; preflight names the problem
        return False
