"""Is the step already done on the host (doit `uptodate`)? Reads facts only."""

from __future__ import annotations

from obsplan.executor.host.integrity import install_problems
from obsplan.executor.host.stepfacts import StepFacts

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Step


def reason(facts: StepFacts, chain: list[Step], link: str | None) -> str | None:
    """Why the step is done: `already_past` (the host runs a later version of its `chain`), `up_to_date` (the
    target is linked, intact, its definition and files as rendered, and serves); else None. `link`: the host's."""
    ctx, step = facts.ctx, facts.step
    if ctx.db is not None and ctx.db.step_unfinished(step.id):
        return None
    if link is not None and link != step.to_version:
        later = [s.to_version for s in chain[chain.index(step) + 1 :]]
        return "already_past" if link in later else None
    intact = not install_problems(ctx.layout, facts.c, facts.runtime, link)  # deleted behind our back?
    done = link == step.to_version and intact and _definition_current(facts)
    return "up_to_date" if done and facts.served_version(step.to_version) == step.to_version else None


def _definition_current(facts: StepFacts) -> bool:
    definition = facts.ctx.services.definition_path(facts.c)
    version = facts.step.to_version
    try:
        same_unit = definition.is_file() and definition.read_text() == facts.rendered(version)
        return same_unit and facts.files_current(version)
    except ObsplanError:  # e.g. an unreadable password file: not done; preflight names the problem
        return False
