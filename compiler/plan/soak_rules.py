"""Soak between stages (seed 003's "wait 1 week, monitor dashboards" made enforceable).

The policy's `soak:` maps a component to {version or version prefix: duration}: a version matching the key
must have served healthily (been verified by obsplan on the host) for that long before the next hop away from
it. `soak: {prometheus: {"2.55": 7d}}` holds every Prometheus 2.55.x for a week before 3.x. Durations: an
integer number of seconds, or a number with a unit s, m, h, d or w ("36h", "7d"). The compiler copies the
duration into the lock's step (`soak_seconds`); `obsplan apply` refuses the step with the time remaining.
"""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(value: str | int | float) -> int:
    """'7d' → 604800; raises ValueError naming the accepted forms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration is not negative: {value}")
        return int(value)
    m = _DURATION.match(str(value))
    if m is None:
        raise ValueError(f"{value!r} is not a duration (e.g. 3600, 45m, 36h, 7d, 2w)")
    return int(float(m.group(1)) * _UNITS[m.group(2) or "s"])


def matches(key: str, version: str) -> bool:
    """'2.55' matches 2.55 and 2.55.x (whole dotted parts), '2.55.1' matches only itself."""
    return version == key or version.startswith(key + ".") or version.startswith(key + "+")


def soak_seconds(policy: dict[str, dict[str, str | int]], component: str, from_version: str | None) -> int | None:
    """The soak a hop away from `from_version` requires (the longest matching key wins), or None."""
    if from_version is None:
        return None
    found = [parse_duration(d) for k, d in (policy.get(component) or {}).items() if matches(k, from_version)]
    return max(found) if found else None
