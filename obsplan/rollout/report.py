"""Rollout output: JSON events (one per line) with `--json`, plain progress lines per batch otherwise, and the
Markdown summary for the change record (built from the journal, so `--status` can print it again later)."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from obsplan.kernel.clock import now_iso
from obsplan.kernel.mdescape import md, md_code


class RolloutReporter:
    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout

    def emit(self, event: str, **data: Any) -> dict[str, Any]:
        record = {"timestamp": now_iso(), "event": event, **data}
        if self.as_json:
            self.stream.write(json.dumps(record, sort_keys=True) + "\n")
        else:
            self.stream.write(_line(record) + "\n")
        self.stream.flush()
        return record

    def progress(self, host: str, what: str) -> None:
        if not self.as_json:
            self.stream.write(f"    {now_iso()[11:23]} {host}: {what}\n")
            self.stream.flush()


def _line(r: dict[str, Any]) -> str:
    e = r["event"]
    if e == "rollout_planned":
        batches = "; ".join(f"{b['name']}: {', '.join(b['hosts'])}" for b in r["batches"])
        return f"rollout {r['rollout_id']}: {len(r['hosts'])} host(s), {batches}"
    if e == "rollout_resumed":
        left = f"; failed, left as they are: {', '.join(r['left_failed'])}" if r.get("left_failed") else ""
        return f"resuming rollout {r['rollout_id']}; done: {', '.join(r['done']) or 'none'}{left}"
    if e == "gates_overridden":
        changed = "; ".join(f"{flag} {old} -> {new}" for flag, (old, new) in sorted(r["changed"].items()))
        return f"--override-gates: {changed} (journalled)"
    if e == "batch_planned":
        return f"== {r['batch']}: {', '.join(r['hosts'])}"
    if e == "batch_started":
        return f"== {r['batch']} ({', '.join(r['hosts'])})"
    if e == "host_result":
        why = f" — {r['reason']}" if r.get("reason") else ""
        return f"  {r['host']}: {r['action']} {r['status']}{why}"
    if e == "gate_measurement":
        bad = [f"{x['query']}: {x.get('reason')}" for x in r["results"] if not x["ok"]]
        return f"  gate measurement {r['n'] + 1}/{r['count']}: {'ok' if r['ok'] else 'FAILED ' + '; '.join(bad)}"
    if e in ("gate_passed", "gate_failed"):
        return f"  {e.replace('_', ' ')} after {r['batch']}"
    if e == "rollout_halted":
        return f"HALTED at {r['batch']}: {r['reason']}"
    if e == "rollout_done":
        return f"rollout done: {r['hosts']} host(s)"
    if e == "dry_run_host":
        steps = r.get("steps_note") or ", ".join(r["steps"]) or "nothing to do"
        return f"  {r['host']} ({r['address']}): {steps}\n      why: {r.get('why', '')}"
    return f"{e}: {json.dumps({k: v for k, v in r.items() if k not in ('event', 'timestamp')}, sort_keys=True)}"


def _overrides(opts: dict[str, Any]) -> list[str]:
    """`--override-gates` on a resume: what changed, from what, when."""
    out = []
    for o in opts.get("overrides", []):
        changed = "; ".join(
            f"{md_code(flag)} {md(repr(old))} → {md(repr(new))}" for flag, (old, new) in sorted(o["changed"].items())
        )
        out.append(f"- overridden on resume at {md(o['at'])} (--override-gates): {changed}")
    return out


def markdown(rollout: dict[str, Any], results: list[dict[str, Any]], measurements: list[dict[str, Any]]) -> str:
    """The change-record summary of one rollout; every value from outside (host names, host output, gate
    expressions, Prometheus error text, paths) escaped for the Markdown it lands in (obsplan.kernel.mdescape)."""
    opts = rollout["options"]
    lines = [
        f"## Rollout {md(rollout['id'])}: {md(rollout['status'])}",
        "",
        f"- lock: {md_code(rollout['lock_path'])} (sha256 {md(str(rollout['lock_sha256'])[:12])})",
        f"- inventory: {md_code(rollout['inventory'])}",
        f"- started {md(rollout['started_at'])}, finished {md(rollout['finished_at'] or '—')}",
        f"- gates: {', '.join(md_code(g) for g in opts.get('gates', [])) or 'none'}"
        f" (soak {md(opts.get('soak'))} s, interval {md(opts.get('interval'))} s, initial delay "
        f"{md(opts.get('initial_delay'))} s, failure limit {md(opts.get('failure_limit'))})",
        *_overrides(opts),
        "",
        "| batch | host | action | result | detail |",
        "|---|---|---|---|---|",
    ]
    names = {b["index"]: b["name"] for b in rollout["batches"]}
    for r in results:
        detail = md(str(r["detail"].get("reason") or "")[:160])
        batch = md(names.get(r["batch"], r["batch"]))
        lines.append(f"| {batch} | {md(r['host'])} | {md(r['action'])} | {md(r['status'])} | {detail} |")
    if measurements:
        lines += ["", "| batch | measurement | result |", "|---|---|---|"]
        for m in measurements:
            bad = "; ".join(f"{x['query']}: {x.get('reason')}" for x in m["detail"]["results"] if not x["ok"])
            result = "ok" if m["ok"] else "failed: " + md(bad[:400])
            lines.append(f"| {md(names.get(m['batch'], m['batch']))} | {m['n'] + 1} | {result} |")
    return "\n".join(lines) + "\n"
