"""Metric gates between batches, in the manner of Argo Rollouts' AnalysisTemplate.

A gate is a list of PromQL expressions evaluated through the Prometheus HTTP API (`/api/v1/query`). One
measurement evaluates every expression once: an expression with an empty result, any sample equal to 0, a
query error or an unreachable Prometheus fails the measurement. After `initial_delay` seconds (Argo's
`initialDelay`), a measurement is taken every `interval` seconds during `soak` seconds (1 + soak // interval
measurements, Argo's `count`); more failed measurements than `failure_limit` fail the gate, which stops
measuring at once (Argo's `failureLimit`).

`$HOSTS` in an expression expands to a regular expression matching the names and the addresses of the hosts
done so far, written for a double-quoted PromQL string: `up{instance=~"($HOSTS):9100"}`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a gate is measured: a rollout without gates never loads it (~0.15 s CPU)
    import httpx


def hosts_regex(names_and_addresses: list[str]) -> str:
    """Alternation of the escaped names, with backslashes doubled for a double-quoted PromQL string."""
    parts = sorted(set(names_and_addresses))
    return "|".join(re.escape(p).replace("\\", "\\\\") for p in parts)


def expand(expr: str, hosts: list[str]) -> str:
    return expr.replace("$HOSTS", hosts_regex(hosts))


@dataclass
class Measurement:
    ok: bool
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "results": self.results}


def _judge(expr: str, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("status") != "success":
        return {"query": expr, "ok": False, "reason": f"query error: {body.get('error', body)}"}
    data = body.get("data", {})
    kind, result = data.get("resultType"), data.get("result")
    samples = [float(result[1])] if kind == "scalar" else [float(r["value"][1]) for r in result or []]
    if not samples:
        return {"query": expr, "ok": False, "reason": "empty result"}
    zeros = [r.get("metric", {}) for r in (result if kind == "vector" else []) if float(r["value"][1]) == 0]
    if 0.0 in samples:
        return {"query": expr, "ok": False, "reason": "a sample is 0", "zero_series": zeros, "samples": samples}
    return {"query": expr, "ok": True, "samples": samples}


def measure(client: httpx.Client, prometheus: str, exprs: list[str]) -> Measurement:
    import httpx

    results = []
    for expr in exprs:
        try:
            resp = client.get(f"{prometheus.rstrip('/')}/api/v1/query", params={"query": expr})
            results.append(_judge(expr, resp.json()))
        except (httpx.HTTPError, ValueError) as exc:
            results.append({"query": expr, "ok": False, "reason": f"Prometheus unreachable: {exc}"})
    return Measurement(all(r["ok"] for r in results), results)


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
    import httpx

    exprs = [expand(e, hosts) for e in spec.exprs]
    failures = 0
    sleep(spec.initial_delay)
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        for n in range(spec.count):
            if n:
                sleep(spec.interval)
            m = measure(client, spec.prometheus, exprs)
            on_measurement(n, m)
            failures += not m.ok
            if failures > spec.failure_limit:
                return False
    return True
