"""The rollout's numbers, URLs, host lists and gate expressions, checked where they are given (the command line,
or a library caller's RolloutOptions) so that `inf%`, `nan`, a zero interval, a Prometheus URL without a host,
a `--limit` that names no host (an empty shell variable would otherwise mean the whole fleet) or an empty gate is
bad input (exit 2) before any host is touched, `--dry-run` included."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from obsplan.kernel.errors import ObsplanError

LIMITS = {  # option: (lowest allowed, whether the lowest itself is allowed)
    "--soak": (0.0, True),
    "--interval": (0.0, False),
    "--initial-delay": (0.0, True),
    "--health-timeout": (0.0, False),
}
HINTS = {
    "--soak": "seconds of measurements, e.g. --soak 600",
    "--interval": "seconds between measurements, more than 0, e.g. --interval 30",
    "--initial-delay": "seconds, 0 or more, e.g. --initial-delay 60",
    "--health-timeout": "seconds, more than 0, e.g. --health-timeout 60",
}
MAX_SECONDS = 7 * 24 * 3600.0  # a week: longer is a typo, not a soak


def seconds(option: str, value: float | None) -> float | None:
    """A finite number of seconds within the option's range (None passes: the option was not given)."""
    if value is None:
        return None
    low, inclusive = LIMITS[option]
    ok = math.isfinite(value) and (value >= low if inclusive else value > low) and value <= MAX_SECONDS
    if not ok:
        raise ObsplanError(f"{option} {value} is not a usable number of seconds", key=option, hint=HINTS[option])
    return value


def batch_part(part: str) -> float | int:
    """One `--batches` entry: a percentage in (0, 100] or a host count >= 0."""
    try:
        value: float | int = float(part[:-1]) if part.endswith("%") else int(part)
    except ValueError:
        value = -1
    valid = (math.isfinite(value) and 0 < value <= 100) if part.endswith("%") else value >= 0
    if not valid:
        raise ObsplanError(
            f"{part!r} is neither a percentage (0-100%) nor a host count",
            key="--batches",
            hint="e.g. --batches 10%,50%,100%",
        )
    return value


def batch_spec(spec: str) -> str:
    """Every entry of a `--batches` list, checked (the fleet size is not known yet)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ObsplanError("--batches is empty", key="--batches", hint="e.g. --batches 10%,50%,100%")
    for p in parts:
        batch_part(p)
    return spec


def prometheus_url(url: str | None, key: str = "--prometheus") -> str | None:
    """An http(s) URL with a host (and a valid port when one is given)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ObsplanError(
            f"{url!r} is not a Prometheus URL", key=key, hint="e.g. --prometheus http://prometheus.example:9090"
        )
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ObsplanError(f"{url!r} contains whitespace or control characters", key=key, hint="a plain http(s) URL")
    return url


def host_names(option: str, value: str | None) -> str | None:
    """A comma-separated list that names at least one host (None passes: the option was not given)."""
    if value is not None and not any(p.strip() for p in value.split(",")):
        raise ObsplanError(
            f"{option} {value!r} names no host",
            key=option,
            hint=f"name hosts, e.g. {option} web1,web2; an empty value (an unset shell variable?) never means every host",
        )
    return value


def gate_expressions(values: tuple[str, ...] | list[str]) -> tuple[str, ...] | list[str]:
    """Every `--gate` is a PromQL expression, not blank."""
    if any(not v.strip() for v in values):
        raise ObsplanError("--gate is empty", key="--gate", hint="a PromQL expression, e.g. --gate 'up == 1'")
    return values
