"""Cumulative batch targets: the canary, then up to each percentage (or count) of the fleet.

`--batches 10%,50%,100%` on 4 hosts with a canary of 1: the canary is host 1; 10 % of 4 rounds up to 1 host,
already reached, so that batch is empty and dropped; 50 % is 2 hosts (adds host 2); 100 % adds hosts 3 and 4.
A target may also be a plain count (`--batches 2,100%`). The last target must cover the whole fleet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from obsplan.kernel.errors import ObsplanError
from obsplan.rollout.numbers import batch_part


@dataclass(frozen=True)
class Batch:
    index: int
    name: str
    hosts: tuple[str, ...]


def parse_targets(spec: str, total: int) -> list[int]:
    """'10%,50%,100%' → cumulative host counts (non-decreasing, the last equal to total)."""
    targets: list[int] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        raw = batch_part(part)
        value = math.ceil(raw * total / 100) if part.endswith("%") else int(raw)
        if value < 0 or (targets and value < targets[-1]):
            raise ObsplanError(
                f"batch targets must be cumulative and grow: {spec}",
                key="--batches",
                hint="e.g. --batches 10%,50%,100%",
            )
        targets.append(min(value, total))
    if not targets or targets[-1] != total:
        raise ObsplanError(
            f"the last batch target must reach the whole fleet ({total} hosts): {spec}",
            key="--batches",
            hint="end the list with 100%",
        )
    return targets


def plan_batches(hosts: list[str], canary: int, spec: str) -> list[Batch]:
    if canary < 0:
        raise ObsplanError("the canary is a number of hosts, 0 or more", key="--canary", hint="e.g. --canary 1")
    targets = parse_targets(spec, len(hosts))
    batches: list[Batch] = []
    done = min(canary, len(hosts))
    if done:
        batches.append(Batch(0, "canary", tuple(hosts[:done])))
    for target in targets:
        if target > done:
            batches.append(
                Batch(len(batches), f"batch {len(batches) + (0 if canary else 1)}", tuple(hosts[done:target]))
            )
            done = target
    return batches
