"""Post-step PromQL (policy `verify:`, carried by the lock's `host_policy.verify`): after a component's step is
healthy, each of its expressions must hold (a non-empty instant-query result) within `within_seconds`, asked of
the Prometheus the policy names, else the one this lock installs on the host. One that does not hold fails the
step after its switch, so it is rolled back like a failed health check. None ship by default."""

from __future__ import annotations

import time

import httpx
from obsplan.executor.stages.step_results import StepFailed

from obsplan.lock.lockfile import Lock


def prometheus_url(lock: Lock) -> str | None:
    """Where the expressions are asked: the policy's URL, else the Prometheus this lock installs."""
    spec = lock.host_policy.verify
    if spec is None:
        return None
    if spec.prometheus_url:
        return str(spec.prometheus_url).rstrip("/")
    prom = lock.components.get("prometheus")
    if prom is None:
        return None
    host = prom.runtime.probe_host()
    return f"http://{f'[{host}]' if ':' in host else host}:{prom.runtime.port}"


def holds(client: httpx.Client, url: str, expression: str) -> tuple[bool, str]:
    """(whether the instant query answers a non-empty result, what it answered)."""
    try:
        r = client.get(f"{url}/api/v1/query", params={"query": expression}, timeout=15)
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        return False, f"no answer from {url}: {exc}"
    if r.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", "") if isinstance(body, dict) else ""
        return False, f"HTTP {r.status_code}: {error}"[:300]
    data = body.get("data") or {}
    result = data.get("result")
    if not result:
        return False, "empty result"
    if data.get("resultType") == "scalar":  # `scalar(...)` style: a scalar holds when not 0
        return float(result[1]) != 0, f"scalar {result[1]}"
    return True, f"{len(result)} result(s)"


def check(client: httpx.Client, url: str | None, component: str, expressions: list[str], within: float) -> list[str]:
    """Wait until every expression holds; returns the ones that did not within `within` seconds."""
    if not expressions:
        return []
    if url is None:
        raise StepFailed(
            "verify_no_prometheus",
            f"policy verify: names expressions for {component} but no Prometheus to ask "
            "(set verify.prometheus_url, or install prometheus with this lock)",
        )
    deadline = time.monotonic() + within
    pending = list(expressions)
    answers: dict[str, str] = {}
    while True:
        for expr in list(pending):
            ok, answers[expr] = holds(client, url, expr)
            if ok:
                pending.remove(expr)
        if not pending or time.monotonic() >= deadline:
            return [f"{e} ({answers[e]})" for e in pending]
        time.sleep(1.0)
