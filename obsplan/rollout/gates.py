"""Metric gates between batches, in the manner of Argo Rollouts' AnalysisTemplate.

A gate is a list of PromQL expressions evaluated through the Prometheus HTTP API (`/api/v1/query`). One
measurement evaluates every expression once: an expression with an empty result, any sample equal to 0, a
query error, an unreachable Prometheus, an answer that is not a Prometheus query answer (`[]`, `null`, a bare
number, a result of the wrong shape, nested too deep), a sample that is not a finite number (`NaN`, `±Inf`, text)
and an answer not complete within `ANSWER_DEADLINE` seconds or larger than `ANSWER_LIMIT` bytes (decoded) fail
the measurement. After `initial_delay` seconds (Argo's
`initialDelay`), a measurement is taken every `interval` seconds during `soak` seconds (1 + soak // interval
measurements, Argo's `count`); more failed measurements than `failure_limit` fail the gate, which stops
measuring at once (Argo's `failureLimit`).

`$HOSTS` in an expression expands to a regular expression matching the names and the addresses of the hosts
done so far, written for a double-quoted PromQL string: `up{instance=~"($HOSTS):9100"}`. Every character of a
name other than a letter, a digit, `_` and `-` is written as a regular-expression escape (`\\.`, `\\x{22}`),
so no name can end the string or add a matcher (`"`, `\\`, `}` and newlines included).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError

if TYPE_CHECKING:  # asyncio and httpx are imported when a gate is measured (a rollout without gates never needs them)
    import httpx

ANSWER_DEADLINE = 20.0  # seconds for one query's whole answer (a byte-a-second drip is cut here)
ANSWER_LIMIT = 4 * 1024 * 1024  # decoded bytes of one answer (a gzip bomb is cut here)


def _regex_char(c: str) -> str:
    if c.isascii() and (c.isalnum() or c in "_-"):
        return c
    return "\\\\." if c == "." else f"\\\\x{{{ord(c):x}}}"


def hosts_regex(names_and_addresses: list[str]) -> str:
    """Alternation of the names, every other character a regex escape with its backslash doubled for a
    double-quoted PromQL string (RE2 reads `\\x{22}` as `"`)."""
    parts = sorted(set(names_and_addresses))
    return "|".join("".join(_regex_char(c) for c in p) for p in parts)


def expand(expr: str, hosts: list[str]) -> str:
    return expr.replace("$HOSTS", hosts_regex(hosts))


@dataclass
class Measurement:
    ok: bool
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "results": self.results}


class _Malformed(ValueError):
    """The answer is not a Prometheus query answer this gate can judge."""


def _sample(value: Any) -> float:
    """The number of a `[time, "value"]` pair; `_Malformed` for anything else, NaN and ±Inf included."""
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
        raise _Malformed(f'a sample is not a [time, "value"] pair: {str(value)[:80]}')
    try:
        number = float(value[1])
    except ValueError:
        raise _Malformed(f"a sample is not a number: {value[1][:40]!r}") from None
    if not math.isfinite(number):
        raise _Malformed(f"a sample is {value[1][:10]}, not a finite number")
    return number


def _series(kind: Any, result: Any) -> list[tuple[dict[str, Any] | None, float]]:
    """(labels, sample) of a `scalar` (labels None) or `vector` result."""
    if kind == "scalar":
        return [(None, _sample(result))]
    if kind != "vector" or not isinstance(result, list):
        raise _Malformed(f"the result is not an instant vector or a scalar (resultType {str(kind)[:40]!r})")
    out = []
    for r in result:
        if not isinstance(r, dict) or not isinstance(r.get("metric", {}), dict):
            raise _Malformed(f"a series is not an object with labels: {str(r)[:80]}")
        out.append((r.get("metric", {}), _sample(r.get("value"))))
    return out


def _judge(expr: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Malformed(f"the answer is {type(body).__name__}, not a JSON object")
    if body.get("status") != "success":
        return {"query": expr, "ok": False, "reason": f"query error: {str(body.get('error', body))[:300]}"}
    data = body.get("data")
    if not isinstance(data, dict):
        raise _Malformed("the answer has no data object")
    series = _series(data.get("resultType"), data.get("result"))
    if not series:
        return {"query": expr, "ok": False, "reason": "empty result"}
    samples = [v for _, v in series]
    if 0.0 in samples:
        zeros = [labels for labels, v in series if v == 0 and labels is not None]
        return {"query": expr, "ok": False, "reason": "a sample is 0", "zero_series": zeros, "samples": samples}
    return {"query": expr, "ok": True, "samples": samples}


async def _query(client: httpx.AsyncClient, prometheus: str, expr: str) -> dict[str, Any]:
    import httpx

    import obsplan.safeio.bounded_http as bounded_http

    url = f"{prometheus.rstrip('/')}/api/v1/query"
    try:
        resp = await bounded_http.fetch(
            client, "GET", url, params={"query": expr}, limit=ANSWER_LIMIT, deadline=ANSWER_DEADLINE
        )
        return _judge(expr, jsonload.loads(resp.content, url, "Prometheus answer"))
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        return {"query": expr, "ok": False, "reason": f"Prometheus unreachable: {str(exc)[:300] or type(exc).__name__}"}
    except (ObsplanError, ValueError) as exc:
        return {"query": expr, "ok": False, "reason": f"unusable Prometheus answer: {str(exc)[:300]}"}


async def _measure(prometheus: str, exprs: list[str]) -> Measurement:
    import httpx

    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        results = [await _query(client, prometheus, e) for e in exprs]
    return Measurement(all(r["ok"] for r in results), results)


def measure(prometheus: str, exprs: list[str]) -> Measurement:
    """One measurement: every expression evaluated once (each answer bounded in time and bytes)."""
    import asyncio

    return asyncio.run(_measure(prometheus, exprs))


@dataclass(frozen=True)
class GateSpec:
    exprs: list[str]
    prometheus: str
    soak: float
    interval: float
    initial_delay: float
    failure_limit: int

    @property
    def count(self) -> int:
        return 1 + int(self.soak // self.interval) if self.interval > 0 else 1


def run_gate(
    spec: GateSpec,
    hosts: list[str],
    on_measurement: Callable[[int, Measurement], None],
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Take the measurements; True when the gate passed."""

    exprs = [expand(e, hosts) for e in spec.exprs]
    failures = 0
    sleep(spec.initial_delay)
    for n in range(spec.count):
        if n:
            sleep(spec.interval)
        m = measure(spec.prometheus, exprs)
        on_measurement(n, m)
        failures += not m.ok
        if failures > spec.failure_limit:
            return False
    return True
