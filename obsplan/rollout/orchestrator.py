"""The batch loop: canary and cumulative batches, host failures against `--failure-limit`, a gate after every
batch, halt or rollback on gate failure, every fact journalled as it happens so `--resume` can continue."""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from obsplan.errors import EXIT_FAILED, EXIT_OK, ObsplanError
from obsplan.lock_read import open_lock
from obsplan.lockfile import Lock
from obsplan.rollout import report
from obsplan.rollout.batches import Batch, plan_batches
from obsplan.rollout.gates import GateSpec, run_gate
from obsplan.rollout.inventory import Host, Inventory, load_inventory, select
from obsplan.rollout.journal import Journal
from obsplan.rollout.runner import BatchRequest, run_batch


@dataclass
class RolloutOptions:
    lock: Path
    inventory: Path
    state_dir: Path
    bundle: Path | None = None
    canary: int = 1
    batches: str = "10%,50%,100%"
    gates: list[str] = field(default_factory=list)
    prometheus: str | None = None
    soak: float = 0.0
    interval: float = 10.0
    initial_delay: float = 0.0
    failure_limit: int = 0
    on_gate_failure: str = "halt"
    limit: list[str] = field(default_factory=list)
    resume: bool = False
    dry_run: bool = False
    apply_args: list[str] = field(default_factory=list)

    def journalled(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}


@dataclass
class Context:
    opts: RolloutOptions
    lock: Lock
    hosts: dict[str, Host]
    batches: list[Batch]
    out: report.RolloutReporter
    journal: Journal | None = None
    rid: str = "dry-run"
    last_status: dict[str, str] = field(default_factory=dict)
    lock_copy: Path | None = None  # the bytes read once, uploaded to every host

    def emit(self, event: str, **data: Any) -> None:
        record = self.out.emit(event, rollout_id=self.rid, **data)
        if self.journal is not None:
            self.journal.event(self.rid, record)


def _prometheus(opts: RolloutOptions, inv: Inventory, lock: Lock) -> str | None:
    if opts.prometheus:
        return opts.prometheus
    if inv.prometheus:
        return inv.prometheus
    prom = lock.components.get("prometheus")
    for h in inv.hosts:
        if prom is not None and (h.components is None or "prometheus" in h.components):
            return f"http://{h.address}:{prom.runtime.port}"
    return None


def _check(opts: RolloutOptions, lock: Lock, hosts: list[Host]) -> None:
    for h in hosts:
        unknown = [c for c in h.components or [] if c not in lock.components]
        if unknown:
            raise ObsplanError(
                f"host {h.name} lists component(s) {', '.join(unknown)} that the lock does not have",
                file=str(opts.inventory),
                key=f"hosts.{h.name}.components",
                hint=f"the lock has: {', '.join(sorted(lock.components))}",
            )
    if opts.on_gate_failure not in ("halt", "rollback"):
        raise ObsplanError(f"unknown action {opts.on_gate_failure!r}", key="--on-gate-failure", hint="halt or rollback")
    if opts.interval <= 0 or opts.soak < 0 or opts.initial_delay < 0 or opts.failure_limit < 0:
        raise ObsplanError(
            "--interval must be > 0; --soak, --initial-delay, --failure-limit >= 0",
            key="--interval",
            hint="e.g. --soak 600 --interval 30",
        )
    if opts.bundle is not None and not opts.bundle.is_file():
        raise ObsplanError(
            "the bundle for a rollout is one tar file (obsplan bundle LOCK -o FILE.tar)",
            file=str(opts.bundle),
            key="--bundle",
            hint="build it with -o FILE.tar",
        )


def host_steps(lock: Lock, host: Host) -> list[str]:
    return [s.id for s in lock.plan.steps if host.components is None or s.component in host.components]


def _dry_run(ctx: Context, prometheus: str | None) -> int:
    ctx.emit(
        "rollout_planned",
        hosts=list(ctx.hosts),
        batches=[asdict(b) for b in ctx.batches],
        dry_run=True,
        gates=ctx.opts.gates,
        prometheus=prometheus,
    )
    for b in ctx.batches:
        ctx.emit("batch_planned", batch=b.name, hosts=list(b.hosts))
        for name in b.hosts:
            h = ctx.hosts[name]
            ctx.emit("dry_run_host", host=name, address=h.address, root=h.root, steps=host_steps(ctx.lock, h))
    return EXIT_OK


def _request(ctx: Context, action: str) -> BatchRequest:
    order = list(dict.fromkeys(s.component for s in ctx.lock.plan.steps)) + sorted(ctx.lock.components)
    return BatchRequest(
        action=action,
        rollout_id=ctx.rid,
        lock=ctx.lock_copy or ctx.opts.lock,
        bundle=ctx.opts.bundle,
        lock_components=list(dict.fromkeys(order)),
        lock_format=ctx.lock.format_version,
        lock_obsplan_version=ctx.lock.obsplan_version,
        apply_args=ctx.opts.apply_args,
    )


def _record(ctx: Context, batch: Batch, host: str, action: str, result: dict[str, Any]) -> None:
    assert ctx.journal is not None
    ctx.journal.host_result(ctx.rid, batch.index, host, action, result["status"], result)
    ctx.last_status[host] = result["status"]
    ctx.emit(
        "host_result",
        batch=batch.name,
        host=host,
        action=action,
        status=result["status"],
        reason=result.get("reason", ""),
        steps=result.get("steps", {}),
        waiting_seconds=result.get("waiting_seconds"),
    )


def _apply_batch(ctx: Context, batch: Batch, done: set[str]) -> list[str]:
    """Apply to the batch's hosts not yet done; returns the hosts that failed."""
    todo = [ctx.hosts[n] for n in batch.hosts if n not in done]
    ctx.emit(
        "batch_started",
        batch=batch.name,
        index=batch.index,
        hosts=[h.name for h in todo],
        skipped=[n for n in batch.hosts if n in done],
    )
    failed: list[str] = []
    if not todo:
        return failed
    for name, result in run_batch(_request(ctx, "apply"), todo, on_progress=ctx.out.progress):
        _record(ctx, batch, name, "apply", result)
        if result["status"] != "ok":
            failed.append(name)
    return failed


def _rollback_targets(ctx: Context, batch: Batch) -> dict[str, dict[str, Any]]:
    """{host: {"rollback": {component: version it ran before}}} for the batch's hosts this rollout changed."""
    assert ctx.journal is not None
    out: dict[str, dict[str, Any]] = {}
    for r in ctx.journal.host_results(ctx.rid):
        if r["host"] in batch.hosts and r["action"] == "apply" and r["status"] == "ok" and r["detail"].get("changed"):
            out[r["host"]] = {"rollback": r["detail"]["changed"]}
    return out


def _roll_back(ctx: Context, batch: Batch) -> None:
    targets = _rollback_targets(ctx, batch)
    hosts = [ctx.hosts[n] for n in batch.hosts if n in targets]
    for name, result in run_batch(_request(ctx, "rollback"), hosts, extra=targets, on_progress=ctx.out.progress):
        _record(ctx, batch, name, "rollback", result)


def _gate(ctx: Context, batch: Batch, prometheus: str | None) -> bool:
    o = ctx.opts
    if not o.gates:
        if o.soak:
            time.sleep(o.soak)
        return True
    assert prometheus is not None and ctx.journal is not None
    spec = GateSpec(o.gates, prometheus, o.soak, o.interval, o.initial_delay, o.failure_limit)
    done_hosts = [x for b in ctx.batches[: batch.index + 1] for n in b.hosts for x in (n, ctx.hosts[n].address)]
    journal = ctx.journal

    def on_measurement(n: int, m: Any) -> None:
        journal.measurement(ctx.rid, batch.index, n, m.ok, m.to_dict())
        ctx.emit("gate_measurement", batch=batch.name, n=n, count=spec.count, ok=m.ok, results=m.results)

    ok = run_gate(spec, done_hosts, on_measurement)
    ctx.emit("gate_passed" if ok else "gate_failed", batch=batch.name, prometheus=prometheus)
    return ok


def _halt(ctx: Context, batch: Batch, reason: str) -> int:
    assert ctx.journal is not None
    ctx.journal.set_status(ctx.rid, "halted")
    untouched = [n for b in ctx.batches[batch.index + 1 :] for n in b.hosts]
    ctx.emit("rollout_halted", batch=batch.name, reason=reason, untouched=untouched)
    return EXIT_FAILED


def _loop(ctx: Context, prometheus: str | None) -> int:
    assert ctx.journal is not None
    passed = ctx.journal.passed_gates(ctx.rid)
    done = ctx.journal.applied_ok(ctx.rid)
    for batch in ctx.batches:
        if batch.index in passed and all(n in done for n in batch.hosts):
            continue
        failed = _apply_batch(ctx, batch, done)
        waiting = [n for n in failed if ctx.last_status.get(n) == "waiting"]
        if waiting:
            return _halt(
                ctx,
                batch,
                f"{len(waiting)} host(s) waiting for the policy's soak: {', '.join(waiting)} "
                "(resume with --resume once it has passed)",
            )
        if len(failed) > ctx.opts.failure_limit:
            return _halt(
                ctx,
                batch,
                f"{len(failed)} host(s) failed: {', '.join(failed)} (--failure-limit {ctx.opts.failure_limit})",
            )
        if not _gate(ctx, batch, prometheus):
            if ctx.opts.on_gate_failure == "rollback":
                _roll_back(ctx, batch)
            return _halt(ctx, batch, f"gate failed after {batch.name}")
    ctx.journal.set_status(ctx.rid, "done")
    ctx.emit("rollout_done", hosts=len(ctx.hosts))
    return EXIT_OK


def _start(ctx: Context, opts: RolloutOptions, journal: Journal) -> None:
    """A new journal entry, or (with --resume) the newest unfinished rollout of this lock."""
    ctx.journal = journal
    if opts.resume:
        prev = journal.rollout()
        if prev is None or prev["status"] == "done":
            raise ObsplanError(
                "there is no unfinished rollout to resume",
                key="--resume",
                hint=f"journal: {journal.path}; start a new rollout without --resume",
            )
        if prev["lock_sha256"] != ctx.lock.content_sha256:
            raise ObsplanError(
                f"rollout {prev['id']} was of another lock ({prev['lock_path']})",
                key="--resume",
                hint="resume with the same LOCK, or start a new rollout",
            )
        ctx.rid = prev["id"]
        ctx.batches = [Batch(b["index"], b["name"], tuple(b["hosts"])) for b in prev["batches"]]
        journal.set_status(ctx.rid, "running")
        ctx.emit("rollout_resumed", done=sorted(journal.applied_ok(ctx.rid)))
        return
    ctx.rid = journal.start(
        str(opts.lock),
        ctx.lock.content_sha256,
        str(opts.inventory),
        opts.journalled(),
        [asdict(b) for b in ctx.batches],
    )


def rollout(opts: RolloutOptions, out: report.RolloutReporter) -> int:
    """Roll the lock out. Its bytes are read once: the hosts receive a private copy of exactly those bytes."""
    opened = open_lock(opts.lock)
    lock = opened.lock
    lock.require("apply", str(opts.lock))
    inv = load_inventory(opts.inventory)
    hosts = select(inv, opts.limit, str(opts.inventory))
    _check(opts, lock, hosts)
    prometheus = _prometheus(opts, inv, lock)
    if opts.gates and prometheus is None:
        raise ObsplanError(
            "a gate needs a Prometheus",
            key="--prometheus",
            hint="give --prometheus URL, or `prometheus: URL` in the inventory",
        )
    batches = plan_batches([h.name for h in hosts], opts.canary, opts.batches)
    ctx = Context(opts, lock, {h.name: h for h in hosts}, batches, out)
    if opts.dry_run:
        return _dry_run(ctx, prometheus)
    journal = Journal(opts.state_dir)
    private = tempfile.TemporaryDirectory(prefix="obsplan-rollout-")
    try:
        ctx.lock_copy = Path(private.name) / "lock.json"
        ctx.lock_copy.write_bytes(opened.data)
        _start(ctx, opts, journal)
        ctx.emit(
            "rollout_planned",
            hosts=list(ctx.hosts),
            batches=[asdict(b) for b in ctx.batches],
            gates=opts.gates,
            prometheus=prometheus,
        )
        code = _loop(ctx, prometheus)
        summary = summary_markdown(journal, ctx.rid)
        (opts.state_dir / f"rollout-{ctx.rid}.md").write_text(summary)
        if not out.as_json:
            out.stream.write("\n" + summary)
        return code
    finally:
        journal.close()
        private.cleanup()


def summary_markdown(journal: Journal, rid: str | None = None) -> str:
    ro = journal.rollout(rid)
    if ro is None:
        raise ObsplanError("no rollout in the journal", file=str(journal.path), hint="run `obsplan rollout` first")
    return report.markdown(ro, journal.host_results(ro["id"]), journal.measurements(ro["id"]))
