"""Lock format versions: what each `format_version` means, and one reader per version into today's model.

`format_version` moves whenever a lock field is added, removed or changes meaning; the reader of every format
obsplan ever wrote is kept here, so a lock reviewed, signed or bundled with an earlier obsplan stays readable.
A reader works on the parsed JSON document (after its content hash was checked against the document as
written, `obsplan/lock/lockfile.py`) and returns the document in today's shape plus the *gaps*: what the old
format lacks that some command needs (`apply` of a lock without service definitions). Gaps are refused by
the command needing them (`Lock.require`), naming the format, the obsplan that wrote it and the fix.

`FORMAT_1_ABSENT` is the one table of what an absent field of a format-1 lock reads as.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obsplan.lock.service_def import ServiceDef

FORMAT_VERSION = 2
"""The format this obsplan writes."""


@dataclass(frozen=True)
class Gap:
    """Something a format lacks: what it is, and the commands that cannot run without it."""

    what: str
    needed_by: tuple[str, ...]


@dataclass(frozen=True)
class Absent:
    """How a field missing from an old lock reads: its value and what that value means."""

    value: Any
    meaning: str
    gap: Gap | None = None


SERVICE_GAP = Gap("service definitions", ("apply", "rollback"))

_ARCHIVE_LIMITS = {"max_total_bytes": 4 * 1024**3, "max_members": 20_000, "max_ratio": 200.0}
_HOST_POLICY: dict[str, Any] = {
    "keep_versions": 3,
    "retention_days": 30,
    "auto_rollback_on_failure": True,
    "require_checksum_verification": True,
    "on_manual_change": "skip",
    "download_deadline_seconds": 900,
    "archive_limits": _ARCHIVE_LIMITS,
}

_GENERIC_SERVICE = ServiceDef.generic().model_dump(mode="json", by_alias=True)
"""Placeholder read into a format-1 lock without `runtime.service`, so diff and report can show the rest;
commands that run services refuse the lock instead (`SERVICE_GAP`)."""

FORMAT_1_ABSENT: dict[str, Absent] = {
    "host_policy": Absent(_HOST_POLICY, "the policy defaults of obsplan 0.1.0 (3 versions, 30 days, ...)"),
    **{
        f"host_policy.{k}": Absent(v, f"policy default {k} = {v!r}")
        for k, v in _HOST_POLICY.items()
        if k != "archive_limits"
    },
    "host_policy.archive_limits": Absent(_ARCHIVE_LIMITS, "the default extraction ceilings"),
    **{
        f"host_policy.archive_limits.{k}": Absent(v, f"default ceiling {k} = {v!r}") for k, v in _ARCHIVE_LIMITS.items()
    },
    "components.*.stated_current": Absent(None, "nothing stated in versions.yaml was recorded"),
    "components.*.artifacts.*.checksum_origin": Absent(None, "the sha256 (if any) was fetched from upstream"),
    "components.*.runtime.listen_address": Absent(None, "all interfaces (the upstream default)"),
    "components.*.runtime.user": Absent(None, "the service manager's user (root)"),
    "components.*.runtime.mysql": Absent(None, "no MySQL connection"),
    "components.*.runtime.scrape_uri": Absent(None, "no scrape URI"),
    "components.*.runtime.cluster": Absent(None, "no cluster settings"),
    "components.*.runtime.storage": Absent(None, "no storage settings"),
    "components.*.runtime.service": Absent(
        _GENERIC_SERVICE, "none recorded: apply and rollback refuse the lock", gap=SERVICE_GAP
    ),
    "components.*.runtime.service.versions.*.from": Absent(None, "the variant applies from the first version"),
    "plan.steps.*.artifacts.*.checksum_origin": Absent(None, "the sha256 (if any) was fetched from upstream"),
    "plan.steps.*.refuse_from": Absent(None, "only the plan's own path (from_version) is accepted"),
    "plan.steps.*.priority": Absent("normal", "not a security fix"),
    "plan.steps.*.approval": Absent(None, "pending approval under --auto"),
}


@dataclass(frozen=True)
class Format:
    version: int
    written_by: str
    summary: str
    read: Callable[[dict[str, Any]], tuple[dict[str, Any], frozenset[Gap]]]
    absent: dict[str, Absent] = field(default_factory=dict)


def _read_format_1(doc: dict[str, Any]) -> tuple[dict[str, Any], frozenset[Gap]]:
    """Every lock stamped 1 (obsplan 0.1.0 and its development builds): fields added along the way may be
    absent; each reads as `FORMAT_1_ABSENT` states."""
    out = copy.deepcopy(doc)
    gaps: set[Gap] = set()
    for path, absent in FORMAT_1_ABSENT.items():
        gaps |= _fill(out, path.split("."), absent)
    return out, frozenset(gaps)


def _fill(node: Any, parts: list[str], absent: Absent) -> set[Gap]:
    """Set the field at `parts` (`*`: every key or list item) where it is absent; the gaps that filled."""
    if isinstance(node, list) and parts[0] == "*":
        return set().union(*(_fill(item, parts[1:], absent) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()  # a wrong type is reported by the model's validation, naming the key
    head, rest = parts[0], parts[1:]
    if head == "*":
        return set().union(*(_fill(v, rest, absent) for v in node.values())) if node else set()
    if rest:
        return _fill(node.get(head), rest, absent)
    if head in node:
        return set()
    node[head] = copy.deepcopy(absent.value)
    return {absent.gap} if absent.gap else set()


def _read_format_2(doc: dict[str, Any]) -> tuple[dict[str, Any], frozenset[Gap]]:
    """This release's format: today's model, every field as written."""
    return doc, frozenset()


FORMATS: dict[int, Format] = {
    1: Format(
        1,
        "obsplan 0.1.0",
        "the first lock; fields were added without the number moving (see FORMAT_1_ABSENT)",
        _read_format_1,
        FORMAT_1_ABSENT,
    ),
    2: Format(
        2,
        "obsplan 0.2.0",
        "every field of format 1 always written; the content hash covers the document as written",
        _read_format_2,
    ),
}
