"""The batch loop: canary and cumulative batches, host failures against `--failure-limit`, a gate after every
batch, halt or rollback on gate failure, every fact journalled as it happens so `--resume` can continue."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import obsplan.rollout.bootstrap.controller_side as bootstrap
import obsplan.rollout.journal.resume as resume
from obsplan.kernel.errors import EXIT_FAILED, EXIT_OK, ObsplanError
from obsplan.lock.lockfile import Lock
from obsplan.lock.read import open_lock
from obsplan.rollout import report
from obsplan.rollout.batches import Batch
from obsplan.rollout.gates import GateSpec, run_gate
from obsplan.rollout.inventory.hosts import Host, load_inventory, select
from obsplan.rollout.inventory.inventory_file import require_ssh_files
from obsplan.rollout.journal.rollouts_db import Journal
from obsplan.rollout.option_checks import check_options
from obsplan.rollout.prepare import Prepared, collect_facts, facts_from_dir, lock_order, prepare, resumed
from obsplan.rollout.runner import BatchRequest, WorkerSession, run_batch


@dataclass(frozen=True)
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
    canary_hosts: str | None = None
    facts_dir: Path | None = None
    override_gates: bool = False
    retry_failed: bool = False
    explicit: set[str] = field(default_factory=set)  # options given on the command line (compared on resume)
    bootstrap: bool = False

    def journalled(self) -> dict[str, Any]:
        data = asdict(self)
        for transient in ("explicit", "resume", "dry_run", "override_gates", "retry_failed", "facts_dir"):
            data.pop(transient)
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
    leave: set[str] = field(default_factory=set)  # failed hosts a resume leaves alone (no --retry-failed)
    remeasure: int | None = None  # a resumed gate halt: this batch's gate is measured first
    session: WorkerSession | None = None  # the SSH worker, hosts connected once for the whole rollout
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # from the facts pass (not collected again)
    wheelhouse: dict[str, Any] | None = None  # --bootstrap: bootstrap.prepare()'s description
    lock_copy: Path | None = None  # the bytes read once, uploaded to every host

    def emit(self, event: str, **data: Any) -> None:
        record = self.out.emit(event, rollout_id=self.rid, **data)
        if self.journal is not None:
            self.journal.event(self.rid, record)


def host_steps(lock: Lock, components: list[str] | None) -> list[str]:
    return [s.id for s in lock.plan.steps if components is None or s.component in components]


def _dry_run(ctx: Context, prometheus: str | None, why: dict[str, str]) -> int:
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
            undecided = h.components is None
            ctx.emit(
                "dry_run_host",
                host=name,
                address=h.address,
                root=h.root,
                components=h.components,
                steps=[] if undecided else host_steps(ctx.lock, h.components),
                steps_note="decided from the host's facts at run time" if undecided else None,
                why=why[name],
            )
    return EXIT_OK


def _request(ctx: Context, action: str) -> BatchRequest:
    return BatchRequest(
        action=action,
        rollout_id=ctx.rid,
        lock=ctx.lock_copy or ctx.opts.lock,
        bundle=ctx.opts.bundle,
        lock_components=lock_order(ctx.lock),
        lock_format=ctx.lock.format_version,
        lock_obsplan_version=ctx.lock.obsplan_version,
        apply_args=ctx.opts.apply_args,
        wheelhouse=ctx.wheelhouse,
    )


def _record(ctx: Context, batch: Batch, host: str, action: str, result: dict[str, Any]) -> None:
    assert ctx.journal is not None
    if action == "apply" and result.get("facts") is None and host in ctx.facts:
        result = {**result, "facts": ctx.facts[host]}
    ctx.last_status[host] = result["status"]
    with ctx.journal.atomic():
        ctx.journal.host_result(ctx.rid, batch.index, host, action, result["status"], result)
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
    """Apply to the batch's hosts not yet done (nor left failed); returns the hosts that failed."""
    todo = [ctx.hosts[n] for n in batch.hosts if n not in done and n not in ctx.leave]
    ctx.emit(
        "batch_started",
        batch=batch.name,
        index=batch.index,
        hosts=[h.name for h in todo],
        skipped=[n for n in batch.hosts if n in done or n in ctx.leave],
    )
    failed: list[str] = []
    for h in [h for h in todo if h.components == []]:  # none of the lock's components runs there
        _record(ctx, batch, h.name, "apply", {"status": "ok", "reason": "none of the lock's components runs here"})
    todo = [h for h in todo if h.components != []]
    if not todo:
        return failed
    known = {n: {"facts_known": True} for n in ctx.facts}
    for name, result in run_batch(_request(ctx, "apply"), todo, known, ctx.out.progress, session=ctx.session):
        _record(ctx, batch, name, "apply", result)
        if result["status"] != "ok":
            failed.append(name)
    return failed


def _rollback_targets(ctx: Context, batch: Batch) -> dict[str, dict[str, Any]]:
    """{host: {"rollback": {component: version it ran before}}} for the batch's hosts this rollout changed
    (and not rolled back since)."""
    assert ctx.journal is not None
    out: dict[str, dict[str, Any]] = {}
    for r in ctx.journal.host_results(ctx.rid):
        if r["host"] not in batch.hosts:
            continue
        if r["action"] == "apply" and r["status"] == "ok" and r["detail"].get("changed"):
            out[r["host"]] = {"rollback": r["detail"]["changed"]}
        elif r["action"] == "rollback" and r["status"] == "rolled_back":
            out.pop(r["host"], None)
    return out


def _roll_back(ctx: Context, batch: Batch) -> None:
    targets = _rollback_targets(ctx, batch)
    hosts = [ctx.hosts[n] for n in batch.hosts if n in targets]
    if not hosts:
        return
    progress = ctx.out.progress
    for name, result in run_batch(_request(ctx, "rollback"), hosts, targets, progress, session=ctx.session):
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
    ctx.emit("gate_passed" if ok else "gate_failed", batch=batch.name, index=batch.index, prometheus=prometheus)
    return ok


def _halt(ctx: Context, batch: Batch, reason: str, cause: str) -> int:
    """cause: hosts (failed beyond the limit), waiting (a policy soak), gate."""
    assert ctx.journal is not None
    ctx.journal.set_status(ctx.rid, "halted")
    untouched = [n for b in ctx.batches[batch.index + 1 :] for n in b.hosts]
    ctx.emit("rollout_halted", batch=batch.name, index=batch.index, reason=reason, cause=cause, untouched=untouched)
    return EXIT_FAILED


def _gate_or_halt(ctx: Context, batch: Batch, prometheus: str | None, again: bool = False) -> int | None:
    if _gate(ctx, batch, prometheus):
        return None
    if ctx.opts.on_gate_failure == "rollback":
        _roll_back(ctx, batch)
    return _halt(ctx, batch, f"gate {'still failing' if again else 'failed'} after {batch.name}", "gate")


def _loop(ctx: Context, prometheus: str | None) -> int:
    assert ctx.journal is not None
    if ctx.remeasure is not None:  # a resumed gate halt: the failed gate first, and on only if it passes now
        halted = ctx.batches[ctx.remeasure]
        code = _gate_or_halt(ctx, halted, prometheus, again=True)
        if code is not None:
            return code
    passed = ctx.journal.passed_gates(ctx.rid)
    done = ctx.journal.applied_ok(ctx.rid)
    for batch in ctx.batches:
        if batch.index in passed and all(n in done or n in ctx.leave for n in batch.hosts):
            continue
        failed = _apply_batch(ctx, batch, done)
        waiting = [n for n in failed if ctx.last_status.get(n) == "waiting"]
        if waiting:
            why = f"{len(waiting)} host(s) waiting for the policy's soak: {', '.join(waiting)}"
            return _halt(ctx, batch, why + " (resume with --resume once it has passed)", "waiting")
        if len(failed) > ctx.opts.failure_limit:
            why = f"{len(failed)} host(s) failed: {', '.join(failed)} (--failure-limit {ctx.opts.failure_limit})"
            return _halt(ctx, batch, why, "hosts")
        code = _gate_or_halt(ctx, batch, prometheus)
        if code is not None:
            return code
    ctx.journal.set_status(ctx.rid, "done")
    ctx.emit("rollout_done", hosts=len(ctx.hosts))
    return EXIT_OK


def _resume(opts: RolloutOptions, lock: Lock, journal: Journal) -> tuple[RolloutOptions, dict[str, Any], Any]:
    """(the options to run with, the rollout resumed, the overrides) — refused (exit 2) on a contradiction."""
    prev = resume.previous(journal, lock)
    run_opts, overrides = resume.merged(opts, prev)
    return run_opts, prev, overrides


def _continue(ctx: Context, prev: dict[str, Any], overrides: dict[str, Any]) -> None:
    assert ctx.journal is not None
    journal = ctx.journal
    ctx.leave = resume.check_failed(journal, prev, ctx.opts.retry_failed)
    halt = resume.last_halt(journal, prev["id"]) if prev["status"] == "halted" else None
    ctx.rid = prev["id"]
    if overrides:
        resume.record_overrides(journal, prev, overrides)
        ctx.emit("gates_overridden", changed=overrides)
    if halt is not None and halt.get("cause") == "gate" and isinstance(halt.get("index"), int):
        ctx.remeasure = halt["index"] if halt["index"] < len(ctx.batches) else None
    journal.set_status(ctx.rid, "running")
    ctx.emit("rollout_resumed", done=sorted(journal.applied_ok(ctx.rid)), left_failed=sorted(ctx.leave))


def _prepared(opts: RolloutOptions, lock: Lock, prev: dict[str, Any] | None, session: WorkerSession | None) -> Prepared:
    assert session is not None or opts.dry_run
    inv = load_inventory(opts.inventory)
    hosts = select(inv, opts.limit, str(opts.inventory))
    check_options(opts, lock, hosts)
    if session is not None:
        require_ssh_files(hosts, str(opts.inventory))
        session.hosts = hosts
    if prev is not None:
        missing = [n for b in prev["batches"] for n in b["hosts"] if n not in {h.name for h in hosts}]
        if missing:
            raise ObsplanError(
                f"the inventory no longer has host(s) {', '.join(missing)} of rollout {prev['id']}",
                file=str(opts.inventory),
                hint="resume with the inventory it was started with",
            )
        p = resumed(hosts, prev["options"].get("host_components", {}), prev["batches"])
        return Prepared(p.hosts, p.batches, p.why, opts.prometheus)
    if opts.facts_dir is not None:
        facts = facts_from_dir(opts.facts_dir, hosts)
    elif opts.dry_run:
        facts = {}
    else:
        unnamed = [h for h in hosts if h.components is None]
        req = BatchRequest(
            "facts", "facts", opts.lock, None, lock_order(lock), lock.format_version, lock.obsplan_version, []
        )
        facts, _errors = collect_facts(
            req, unnamed, session=session
        )  # a host without facts decides at its apply, or fails there
    return prepare(lock, inv, hosts, facts, opts.prometheus, (opts.canary, opts.batches, opts.canary_hosts))


def rollout(opts: RolloutOptions, out: report.RolloutReporter) -> int:
    """Roll the lock out. Its bytes are read once: the hosts receive a private copy of exactly those bytes."""
    session = None if opts.dry_run else WorkerSession([])
    if session is not None:
        session.spawn()  # its start-up and imports overlap reading the lock and the inventory
    journal: Journal | None = None
    private = None
    try:
        opened = open_lock(opts.lock)
        lock = opened.lock
        lock.require("apply", str(opts.lock))
        check_options(opts, lock, [])
        journal = None if opts.dry_run else Journal(opts.state_dir)
        private = None if opts.dry_run else tempfile.TemporaryDirectory(prefix="obsplan-rollout-")
        prev: dict[str, Any] | None = None
        overrides: dict[str, Any] = {}
        if opts.resume and journal is not None:
            opts, prev, overrides = _resume(opts, lock, journal)
        prep = _prepared(opts, lock, prev, session)
        _require_prometheus(opts, prep)
        opts = dataclasses.replace(opts, prometheus=prep.prometheus)
        ctx = Context(opts, lock, {h.name: h for h in prep.hosts}, prep.batches, out, session=session, facts=prep.facts)
        if opts.bootstrap:
            ctx.wheelhouse = bootstrap.prepare(opts.bundle, None if journal is None else opts.state_dir)
        if journal is None:
            return _dry_run(ctx, prep.prometheus, prep.why)
        ctx.journal = journal
        if private is not None:
            ctx.lock_copy = Path(private.name) / "lock.json"
            ctx.lock_copy.write_bytes(opened.data)
        if prev is not None:
            _continue(ctx, prev, overrides)
        else:
            options = {**opts.journalled(), "host_components": {h.name: h.components for h in prep.hosts}}
            ctx.rid = journal.start(
                str(opts.lock), lock.content_sha256, str(opts.inventory), options, [asdict(b) for b in ctx.batches]
            )
        ctx.emit(
            "rollout_planned",
            hosts=list(ctx.hosts),
            batches=[asdict(b) for b in ctx.batches],
            gates=opts.gates,
            prometheus=prep.prometheus,
            why=prep.why,
        )
        code = _loop(ctx, prep.prometheus)
        _write_summary(opts, journal, ctx.rid, out)
        return code
    finally:
        if session is not None:
            session.close()
        if journal is not None:
            journal.close()
        if private is not None:
            private.cleanup()


def _require_prometheus(opts: RolloutOptions, prep: Prepared) -> None:
    if opts.gates and prep.prometheus is None:
        raise ObsplanError(
            "a gate needs a Prometheus",
            key="--prometheus",
            hint="give --prometheus URL, `prometheus: URL` in the inventory, or name the host's components",
        )


def _write_summary(opts: RolloutOptions, journal: Journal, rid: str | None, out: report.RolloutReporter) -> None:
    """The rollout's Markdown summary beside its journal, and on the terminal unless --json."""
    summary = summary_markdown(journal, rid)
    (opts.state_dir / f"rollout-{rid}.md").write_text(summary)
    if not out.as_json:
        out.stream.write("\n" + summary)


def summary_markdown(journal: Journal, rid: str | None = None) -> str:
    ro = journal.rollout(rid)
    if ro is None:
        raise ObsplanError("no rollout in the journal", file=str(journal.path), hint="run `obsplan rollout` first")
    return report.markdown(ro, journal.host_results(ro["id"]), journal.measurements(ro["id"]))
