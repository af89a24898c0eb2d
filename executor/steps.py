"""One upgrade step, as a sequence of journalled, idempotent stages.

    preflight → fetch → extract → checkpoint → activate (switch, restart, verify; auto-rollback) → finish

Each stage is journalled ("<stage>", "begin"/"end") and committed before and after it acts, so a SIGKILL
at any instant is resumed by the next apply: finished stages find their facts in place (verified download,
extracted directory, pending rollback point) and the step is redone from there.

Test hook: `OBSPLAN_TEST_KILL_AT=<stage>:<begin|end>` (e.g. `switch:end`) makes the executor SIGKILL itself
right after that journal record is committed. Tests use it to prove crash convergence; never set it otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from obsplan.errors import ObsplanError
from obsplan.lockfile import Artifact, ComponentLock, HostPolicy, Step
from obsplan.versions import Version

from . import adopt
from . import artifacts as art
from .extract import disk_full
from .facts import free_bytes, healthy, probe_binary_version, served_build_info
from .integrity import install_problems
from .layout import Layout, relative_symlink
from .report import Event, Reporter, now_iso
from .service_render import all_file_paths, files_current, render_service
from .services import ServiceManager, prepare_host_dirs, render_context
from .state import RollbackPoint, StateDB

if TYPE_CHECKING:
    from .artifacts import ArtifactSource

KILL_ENV = "OBSPLAN_TEST_KILL_AT"
HEALTH_WINDOW = {"safe": 120.0, "standard": 60.0, "fast": 20.0}
MIN_FREE = 64 * 1024 * 1024
WRONG_VERSION_CHECKS = 5  # consecutive answers of a wrong version from the new pid before giving up

# "pending": not approved for `apply --auto` (or requires such a step); not a failure
Status = Literal["ok", "up_to_date", "failed", "rolled_back", "rollback_failed", "skipped", "would_run", "pending"]


@dataclass
class StepResult:
    """A step's outcome as a value: the reporter and the exit code are derived from these."""

    step_id: str
    component: str
    status: Status
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "rolled_back", "rollback_failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_id,
            "component": self.component,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
        }


class StepFailed(Exception):
    def __init__(self, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


@dataclass
class Context:
    """Everything a step needs, injected by the engine."""

    layout: Layout
    db: StateDB | None  # None only in a dry run on a root never applied to
    reporter: Reporter
    services: ServiceManager
    client: httpx.Client
    source: ArtifactSource
    run_id: str
    platform: str
    mode: str = "standard"
    dry_run: bool = False
    force: bool = False
    health_timeout: float | None = None
    keep_versions: int = 3
    keep_days: float = 30.0
    allow_unverified: bool = False  # install artifacts the lock has no sha256 for (loud, recorded in history)
    accepted_from: dict[str, str | None] = field(default_factory=dict)  # component → host version binding accepted
    policy: HostPolicy = field(default_factory=HostPolicy)  # the lock's host_policy (archive limits, deadline)

    @property
    def window(self) -> float:
        return self.health_timeout if self.health_timeout is not None else HEALTH_WINDOW[self.mode]

    def emit(self, component: str | None, event: str, **metadata: Any) -> None:
        self.reporter.emit(Event(component, event, metadata))


def kill_hook(point: str) -> None:
    """Test hook (see module docstring): SIGKILL this process at the named journal point."""
    if os.environ.get(KILL_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _v(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version.parse(text)
    except ValueError:
        return None


def version_below(version: str, floor: str | None) -> bool:
    v, f = _v(version), _v(floor)
    return v is not None and f is not None and v < f


class StepRunner:
    def __init__(self, ctx: Context, step: Step, comp: ComponentLock, chain: list[Step]) -> None:
        self.ctx = ctx
        self.step = step
        self.comp = comp
        self.chain = chain  # the steps of this component, in order
        self.runtime = comp.runtime
        self.c = step.component
        self.result: StepResult | None = None
        self.point: RollbackPoint | None = None
        self.archive: Path | None = None
        self.started_at = now_iso()
        self.t0 = time.monotonic()
        self.artifact: Artifact | None = step.artifacts.get(ctx.platform)
        self.unverified: str | None = None  # set when the artifact was installed without sha256 verification

    # -- journal -----------------------------------------------------------------------------------------
    def journal(self, stage: str, status: str, detail: str = "") -> None:
        if self.ctx.db is not None and not self.ctx.dry_run:
            self.ctx.db.journal(self.ctx.run_id, self.step.id, self.c, stage, status, detail)
            kill_hook(f"{stage}:{status}")

    def emit(self, event: str, **metadata: Any) -> None:
        self.ctx.emit(self.c, event, step=self.step.id, **metadata)

    # -- host facts -------------------------------------------------------------------------------------
    def host_version(self) -> tuple[str | None, str]:
        """(version, how it was observed): the `current` link, else a binary found at the stable path."""
        link = self.ctx.layout.current_version(self.c)
        if link is not None:
            return link, "current_link"
        exposed = self.ctx.layout.bin_dir / self.runtime.service_binary
        if exposed.exists():
            return self._probe(exposed, self._cache()), "binary_probe"
        return None, "absent"

    def _cache(self) -> StateDB | None:
        return None if self.ctx.dry_run else self.ctx.db

    def _probe(self, binary: Path, cache: StateDB | None) -> str | None:
        return probe_binary_version(binary, self.runtime.version_args, cache, self.runtime.service.version_patterns)

    def served_version(self, expected: str | None = None) -> str | None:
        """The version the running service proves it serves (build_info metric, else health + binary).
        The metric's name may depend on the version (`expected`; default: the host's, else the target)."""
        expected = expected or self.ctx.layout.current_version(self.c) or self.step.to_version
        metric = self.runtime.build_info_metric_for(expected)
        if metric:
            return served_build_info(self.ctx.client, self.runtime.port, metric, host=self.runtime.probe_host())
        if healthy(self.ctx.client, self.runtime.port, self.runtime.health_path, host=self.runtime.probe_host()):
            return self._probe(self.ctx.layout.bin_dir / self.runtime.service_binary, self._cache())
        return None

    def rendered(self, version: str) -> str:
        ctx = render_context(self.c, self.runtime, version, self.ctx.layout)
        return self.ctx.services.render(ctx)

    def files_current(self, version: str) -> bool:
        """The files the service needs at `version` (config, credentials) are written as rendered."""
        return files_current(render_service(self.c, self.runtime, version, self.ctx.layout), self.runtime.user)

    def uptodate(self) -> bool:
        """doit `uptodate`: the host agrees the step is done. Reads facts only."""
        unfinished = self.ctx.db is not None and self.ctx.db.step_unfinished(self.step.id)
        link = self.ctx.layout.current_version(self.c)
        reason = None
        if not unfinished and link is not None and link != self.step.to_version:
            later = [s.to_version for s in self.chain[self.chain.index(self.step) + 1 :]]
            if link in later:
                reason = "already_past"
        intact = not install_problems(self.ctx.layout, self.c, self.runtime, link)  # deleted behind our back?
        if not unfinished and reason is None and link == self.step.to_version and intact:
            definition = self.ctx.services.definition_path(self.c)
            try:
                same_unit = definition.is_file() and definition.read_text() == self.rendered(self.step.to_version)
                same_unit = same_unit and self.files_current(self.step.to_version)
            except ObsplanError:  # e.g. an unreadable password file: not done; preflight names the problem
                same_unit = False
            if same_unit and self.served_version(self.step.to_version) == self.step.to_version:
                reason = "up_to_date"
        if reason is None:
            return False
        self.result = StepResult(self.step.id, self.c, "up_to_date", reason, {"version": link})
        self.emit("up_to_date", reason=reason, version=link)
        return True

    # -- doit actions ---------------------------------------------------------------------------------------
    def actions(self) -> list[Any]:
        return [
            self._action(self.preflight),
            self._action(self.fetch),
            self._action(self.extract),
            self._action(self.checkpoint),
            self._action(self.activate),
            self._action(self.finish),
        ]

    def _action(self, fn: Any) -> Any:
        name = fn.__name__

        def action() -> bool:
            try:
                fn()
            except _Handled:
                return False
            except StepFailed as exc:
                self.fail(exc.reason, str(exc), stage=name, **exc.detail)
                return False
            except ObsplanError as exc:
                self.fail(getattr(exc, "reason", type(exc).__name__), str(exc), stage=name)
                return False
            except (OSError, sqlite3.OperationalError) as exc:
                full = disk_full(exc, f"{name} of {self.step.id}")
                if full is None:
                    raise
                self.fail(full.reason, f"{full} ({exc})", stage=name)
                return False
            except Exception as exc:  # noqa: BLE001 - a bug: recorded as a failed step (exit 3), never "interrupted"
                import traceback

                self.fail(
                    "internal_error",
                    f"{type(exc).__name__}: {exc}",
                    stage=name,
                    traceback=traceback.format_exc()[-4000:],
                )
                return False
            return True

        action.__name__ = f"{self.step.id}:{name}"
        return action

    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)

    def fail(self, reason: str, message: str, status: Status = "failed", **detail: Any) -> None:
        self.result = StepResult(self.step.id, self.c, status, reason, {"error": message, **detail})
        self.emit("step_failed" if status == "failed" else status, reason=reason, error=message, **detail)
        if self.ctx.dry_run or self.ctx.db is None:
            return
        try:
            self._record_failure(status, message)
        except (OSError, sqlite3.OperationalError) as exc:
            if disk_full(exc, "recording") is None:
                raise
            self.emit("warning", code="disk_full", message=f"the failure could not be recorded in the state: {exc}")

    def _record_failure(self, status: Status, message: str) -> None:
        assert self.ctx.db is not None
        self.ctx.db.journal(self.ctx.run_id, self.step.id, self.c, "step", status, message[:2000])
        if status == "failed":  # rolled_back / rollback_failed have recorded their history already
            self._upgrade_failed_history(message)
        self.ctx.db.set_last_result(self.c, status, self.step.id)

    def _upgrade_failed_history(self, error: str) -> None:
        """The one history row of an upgrade that did not complete (before or after its own rollback)."""
        assert self.ctx.db is not None
        self.ctx.db.add_history(
            run_id=self.ctx.run_id,
            component=self.c,
            step_id=self.step.id,
            kind="upgrade",
            from_version=self.step.from_version,
            to_version=self.step.to_version,
            success=False,
            started_at=self.started_at,
            error=error,
            duration=time.monotonic() - self.t0,
            unverified=self.unverified,
        )

    def record_host(self, host: str | None, how: str) -> None:
        """Host facts win: when the host runs another version than the state DB says, record what it runs."""
        if self.ctx.dry_run or self.ctx.db is None:
            return
        db_row = self.ctx.db.installed(self.c)
        recorded = db_row["version"] if db_row is not None else None
        if host != recorded:
            self.emit("host_drift", recorded=recorded, observed=host, observed_by=how)
            self.ctx.db.set_installed(
                self.c,
                host,
                previous=recorded,
                floor=db_row["floor"] if db_row is not None else None,
                source=f"observed:{how}",
                last_result="observed",
            )

    # 1. pre-flight --------------------------------------------------------------------------------------------
    def preflight(self) -> None:
        self.started_at, self.t0 = now_iso(), time.monotonic()
        self.journal("step", "start", self.step.to_version)
        self.emit(
            "step_started",
            from_version=self.step.from_version,
            to_version=self.step.to_version,
            dry_run=self.ctx.dry_run,
        )
        with self.stage("preflight"):
            a = self.artifact
            if a is None:
                raise StepFailed(
                    "no_artifact_for_platform",
                    f"the lock has no artifact for {self.ctx.platform}",
                    platforms=sorted(self.step.artifacts),
                )
            if not a.sha256 and not self.ctx.allow_unverified:
                raise StepFailed(
                    "missing_sha256",
                    f"refusing {a.filename}: the lock has no sha256 for it (checksum_status={a.checksum_status})",
                )
            ok, why = self.ctx.services.reachable()
            if not ok:
                raise StepFailed("service_manager_unreachable", why)
            try:  # renders (secrets readable) and its files' owner exists: nothing fails after the switch for it
                self.rendered(self.step.to_version)
                self.files_current(self.step.to_version)
            except ObsplanError as exc:
                raise StepFailed("service_definition", f"cannot render the {self.c} service: {exc}") from None
            free = free_bytes(self.ctx.layout.root)
            cached = self.ctx.layout.downloads / a.filename
            need = max(MIN_FREE, 3 * cached.stat().st_size) if cached.is_file() else MIN_FREE
            if free < need:
                raise StepFailed("disk_full", f"{free} bytes free under {self.ctx.layout.root}, need {need}")
            host, how = self.host_version()
            pending = self.ctx.db.pending_point(self.step.id) if self.ctx.db is not None else None
            self.point = pending
            self.record_host(host, how)
            expected = {self.step.from_version, self.step.to_version}
            if self.ctx.dry_run:  # earlier steps of the chain only "would run": the host may still be before them
                idx = self.chain.index(self.step) if self.step in self.chain else 0
                expected |= {self.chain[0].from_version, *(s.to_version for s in self.chain[:idx])}
            if self.c in self.ctx.accepted_from:  # off the plan's path, but the matrix allows this start
                expected.add(self.ctx.accepted_from[self.c])
            if host not in expected:
                if self.ctx.force:
                    self.emit("off_plan_path_forced", host_version=host, expected=self.step.from_version)
                else:
                    raise StepFailed(
                        "off_plan_path",
                        f"host runs {self.c} {host or 'nothing'} ({how}); this step expects "
                        f"{self.step.from_version or 'nothing installed'} → {self.step.to_version}. "
                        "Re-run 'obsplan plan' against the host's version, or pass --force to apply this step anyway",
                        host_version=host,
                        expected=self.step.from_version,
                    )
            self.emit(
                "preflight_ok",
                host_version=host,
                sha256=a.sha256 or "UNVERIFIED",
                service_manager=self.ctx.services.name,
                resume=pending.id if pending else None,
            )

    # 2. fetch --------------------------------------------------------------------------------------------------
    def fetch(self) -> None:
        a = self.artifact
        assert a is not None and (a.sha256 or self.ctx.allow_unverified)
        if self.ctx.dry_run:
            self.emit(
                "would_fetch",
                source=self.ctx.source.describe(a),
                to=str(self.ctx.layout.downloads / a.filename),
                sha256=a.sha256 or "UNVERIFIED",
            )
            return
        with self.stage("fetch"):

            def progress(total: int | None) -> Any:
                return self.ctx.reporter.progress(self.c, a.filename, total)

            if not a.sha256:  # --allow-unverified: the digest of what was fetched is recorded, never trusted
                self.archive, actual = art.fetch_unverified(a, self.ctx.layout.downloads, self.ctx.source, progress)
                self.artifact = a.model_copy(update={"sha256": actual})
                self.unverified = (
                    f"{a.filename} installed WITHOUT sha256 verification (--allow-unverified; "
                    f"the lock has none); fetched bytes have sha256 {actual}"
                )
                self.emit(
                    "warning", code="unverified_artifact", file=a.filename, sha256=actual, message=self.unverified
                )
                return
            self.archive, fetched = art.ensure_download(a, self.ctx.layout.downloads, self.ctx.source, progress)
            self.emit(
                "fetched" if fetched else "fetch_cached",
                file=a.filename,
                sha256=a.sha256,
                size=self.archive.stat().st_size,
            )

    # 3. extract ------------------------------------------------------------------------------------------------
    def extract(self) -> None:
        a = self.artifact
        assert a is not None
        target = self.ctx.layout.version_dir(self.c, self.step.to_version)
        if self.ctx.dry_run:
            self.emit("would_extract", to=str(target), exists=target.is_dir())
            return
        with self.stage("extract"):
            assert self.archive is not None
            free = free_bytes(target.parent)
            if not target.is_dir() and free < 3 * self.archive.stat().st_size:
                raise StepFailed("disk_full", f"{free} bytes free, need {3 * self.archive.stat().st_size}")
            extracted = art.ensure_extracted(
                self.archive,
                a,
                target.parent,
                self.step.to_version,
                self.runtime.service_binary,
                self.ctx.policy.archive_limits,
            )
            missing = [n for n, g in self.runtime.binaries.items() if art.find_binary(target, g) is None]
            if self.runtime.service_binary in missing:
                raise StepFailed(
                    "binary_missing",
                    f"{a.filename} has no {self.runtime.service_binary} "
                    f"(glob {self.runtime.binaries.get(self.runtime.service_binary)})",
                )
            binary = art.find_binary(target, self.runtime.binaries[self.runtime.service_binary])
            assert binary is not None
            reported = self._probe(binary, self.ctx.db)
            if reported is not None and reported != self.step.to_version:
                raise StepFailed(
                    "wrong_version",
                    f"{binary} reports version {reported}, the lock says {self.step.to_version}; nothing was switched",
                    reported=reported,
                )
            self.emit(
                "extracted" if extracted else "extract_cached",
                dir=str(target),
                binary_version=reported,
                missing_optional=missing,
            )

    # 4. rollback point -------------------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        layout = self.ctx.layout
        if self.ctx.dry_run:
            self.emit("would_checkpoint", previous=layout.current_version(self.c), floor=self.step.rollback_floor)
            return
        assert self.ctx.db is not None
        with self.stage("checkpoint"):
            if self.point is not None:  # resumed: the point was taken before the crash, keep it
                self.emit("checkpoint_resumed", point=self.point.id, previous=self.point.from_version)
                return
            adopted = adopt.adopt(self.ctx, self)  # an install obsplan did not make: kept as point `adopted`
            if adopted is not None:
                self.point = adopted
                return
            previous = layout.current_version(self.c)
            stamp = now_iso().replace(":", "").replace("+0000", "Z")
            backup = layout.backups / self.c / f"{stamp}-{self.step.id}".replace("/", "_")
            backup.mkdir(parents=True, exist_ok=True)
            files = []
            candidates = [self.ctx.services.definition_path(self.c)]
            if self.runtime.config_file:
                candidates.append(layout.host(self.runtime.config_file))
            candidates += all_file_paths(self.c, self.runtime, layout)  # credentials, environment file
            for f in candidates:
                if f.is_file():
                    dest = backup / str(f.relative_to(layout.root)).replace("/", "__")
                    shutil.copy2(f, dest)
                    files.append(str(f.relative_to(layout.root)))
            row = self.ctx.db.installed(self.c)
            floor = row["floor"] if row is not None else None
            pid = self.ctx.db.add_point(
                component=self.c,
                step_id=self.step.id,
                from_version=previous,
                to_version=self.step.to_version,
                version_dir=str(layout.version_dir(self.c, previous)) if previous else None,
                backup_dir=str(backup),
                files=files,
                data_dir=str(layout.host(self.runtime.data_dir)) if self.runtime.data_dir else None,
                floor=floor,
                status="pending",
            )
            self.point = self.ctx.db.point(pid)
            self.emit(
                "checkpoint",
                point=pid,
                previous=previous,
                backup=str(backup),
                files=files,
                data_dir=self.point.data_dir if self.point else None,
                floor=floor,
            )

    # 5-7. switch, restart, verify; automatic rollback -------------------------------------------------------------
    def activate(self) -> None:
        if self.ctx.dry_run:
            self.emit(
                "would_switch",
                current=str(self.ctx.layout.current_link(self.c)),
                to=self.step.to_version,
                definition=str(self.ctx.services.definition_path(self.c)),
            )
            self.emit("would_restart", service=self.c, health=self.runtime.health_path, window=self.ctx.window)
            self.result = StepResult(self.step.id, self.c, "would_run", "dry_run")
            return
        assert self.point is not None
        if self.point.label == adopt.ADOPTED:  # the backup is safe: stop what runs outside obsplan
            adopt.take_over(self.ctx, self, self.point)
        try:
            with self.stage("switch"):
                self.switch_to(self.step.to_version, rendered=self.rendered(self.step.to_version))
            old = self.ctx.services.status(self.c)
            with self.stage("restart"):
                self.ctx.services.restart(self.c)
            with self.stage("verify"):
                self.verify(self.step.to_version, old.pid if old.running else None)
        except Exception as exc:  # noqa: BLE001 - any failure after the switch must roll back
            self.auto_rollback(exc)

    def switch_to(self, version: str, rendered: str) -> None:
        """Atomic switch: binaries exposed, service definition written, `current` renamed over the old link."""
        layout = self.ctx.layout
        vdir = layout.version_dir(self.c, version)
        if not vdir.is_dir():
            raise StepFailed("version_missing", f"{vdir} does not exist")
        created = prepare_host_dirs(self.c, self.runtime, layout, version)
        relative_symlink(vdir, layout.current_link(self.c))
        current = layout.current_link(self.c)
        for name, pattern in self.runtime.binaries.items():
            found = art.find_binary(vdir, pattern)
            if found is not None:
                relative_symlink(current / found.relative_to(vdir), layout.bin_dir / name)
        self.ctx.services.install_unit(self.c, rendered)
        self.emit("switched", version=version, created=created)

    def verify(self, version: str, old_pid: int | None) -> None:
        """Prove `version` serves: health endpoint, served build_info version (or binary), and a new PID."""
        deadline = time.monotonic() + self.ctx.window
        last = "no answer"
        wrong = 0
        while True:
            st = self.ctx.services.status(self.c)
            if st.running and st.pid is not None and st.pid != old_pid:
                if healthy(
                    self.ctx.client, self.runtime.port, self.runtime.health_path, host=self.runtime.probe_host()
                ):
                    served = self.served_version(version)
                    if served == version:
                        self.emit("verified", version=version, pid=st.pid, health=self.runtime.health_path)
                        return
                    last = f"serves version {served!r}, expected {version}"
                    wrong = wrong + 1 if served is not None else 0
                    if wrong >= WRONG_VERSION_CHECKS:  # a new, healthy process answering another version
                        raise StepFailed(
                            "wrong_version_served", f"{self.c} (pid {st.pid}) is healthy but {last}", served=served
                        )
                else:
                    last = f"{self.runtime.health_path} not healthy yet"
            elif st.given_up:
                raise StepFailed("service_failed", f"{self.c} did not stay up (state {st.state})", state=st.state)
            else:
                last = f"service state {st.state}, pid {st.pid} (old pid {old_pid})"
            if time.monotonic() >= deadline:
                raise StepFailed(
                    "health_timeout", f"{self.c} {version} not proven healthy within {self.ctx.window:.0f}s: {last}"
                )
            time.sleep(0.2)

    def _auto_rollback_history(self, point: RollbackPoint, success: bool, error: str, started: str, t0: float) -> None:
        """The one history row of an automatic rollback, whether it brought the previous version back or not."""
        assert self.ctx.db is not None
        self.ctx.db.add_history(
            run_id=self.ctx.run_id,
            component=self.c,
            step_id=self.step.id,
            kind="auto_rollback",
            from_version=self.step.to_version,
            to_version=point.from_version,
            success=success,
            started_at=started,
            error=error,
            duration=time.monotonic() - t0,
        )

    def auto_rollback(self, exc: BaseException) -> None:
        assert self.point is not None and self.ctx.db is not None
        db, point = self.ctx.db, self.point
        error = str(exc)
        reason = getattr(exc, "reason", type(exc).__name__)
        self.emit("auto_rollback_started", error=error, to_version=point.from_version)
        self._upgrade_failed_history(error)
        t0, started = time.monotonic(), now_iso()
        try:
            with self.stage("rollback"):
                restore_point(self.ctx, self, point)
        except Exception as rb_exc:  # noqa: BLE001 - report where the backup is, whatever went wrong
            msg = (
                f"{error}; automatic rollback to {point.from_version or 'nothing'} FAILED too: {rb_exc}. "
                f"Backup of the previous unit/config: {point.backup_dir}; previous version directory: "
                f"{point.version_dir or '-'}; data directory: {point.data_dir or '-'}"
            )
            self._auto_rollback_history(point, False, str(rb_exc), started, t0)
            db.set_point_status(point.id, "failed")
            raise_fail = StepFailed("rollback_failed", msg, backup=point.backup_dir, version_dir=point.version_dir)
            self.fail(raise_fail.reason, msg, status="rollback_failed", backup=point.backup_dir)
            raise _Handled() from None
        self._auto_rollback_history(point, True, f"rolled back after: {error}", started, t0)
        db.set_point_status(point.id, "used")
        row = db.installed(self.c)
        db.set_installed(
            self.c,
            point.from_version,
            previous=self.step.to_version,
            floor=row["floor"] if row is not None else None,
            last_result="rolled_back",
            last_step=self.step.id,
        )
        self.fail(
            reason,
            f"{error} (automatically rolled back to {point.from_version or 'nothing installed'})",
            status="rolled_back",
            rolled_back_to=point.from_version,
        )
        raise _Handled()

    # 8. finish + retention -------------------------------------------------------------------------------------
    def finish(self) -> None:
        if self.ctx.dry_run:
            return
        assert self.ctx.db is not None and self.point is not None
        db = self.ctx.db
        with self.stage("finish"):
            row = db.installed(self.c)
            floors = [f for f in (row["floor"] if row is not None else None, self.step.rollback_floor) if f]
            floor = max(floors, key=lambda f: _v(f) or Version.parse("0.0.0")) if floors else None
            with db.transaction():
                db.add_history(
                    run_id=self.ctx.run_id,
                    component=self.c,
                    step_id=self.step.id,
                    kind="upgrade",
                    from_version=self.point.from_version,
                    to_version=self.step.to_version,
                    success=True,
                    started_at=self.started_at,
                    duration=time.monotonic() - self.t0,
                    unverified=self.unverified,
                )
                db.set_point_status(self.point.id, "available" if self.point.from_version else "initial")
                db.set_installed(
                    self.c,
                    self.step.to_version,
                    previous=self.point.from_version,
                    floor=floor,
                    last_result="ok",
                    last_step=self.step.id,
                )
                db.journal(self.ctx.run_id, self.step.id, self.c, "step", "done", self.step.to_version)
            removed = retention(self.ctx, self.c)
        self.result = StepResult(
            self.step.id,
            self.c,
            "ok",
            "upgraded",
            {"from": self.point.from_version, "to": self.step.to_version, "floor": floor, "removed": removed},
        )
        self.emit(
            "step_done",
            from_version=self.point.from_version,
            to_version=self.step.to_version,
            duration=round(time.monotonic() - self.t0, 3),
            removed=removed,
        )


class _Handled(Exception):
    """Raised after a failure was recorded, to stop the remaining stages."""


class _Stage:
    def __init__(self, runner: StepRunner, name: str) -> None:
        self.runner, self.name = runner, name

    def __enter__(self) -> None:
        self.runner.journal(self.name, "begin")

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.runner.journal(self.name, "end")
        elif not isinstance(exc, _Handled):
            self.runner.journal(self.name, "error", str(exc)[:2000])


def restore_point(ctx: Context, runner: StepRunner, point: RollbackPoint) -> None:
    """Switch a component back to the state a rollback point recorded and prove the old version serves."""
    layout, c = ctx.layout, runner.c
    if point.from_version is None:  # a fresh install failed: remove it again
        ctx.services.stop(c)
        ctx.services.remove_unit(c)
        for name in runner.runtime.binaries:
            (layout.bin_dir / name).unlink(missing_ok=True)
        layout.current_link(c).unlink(missing_ok=True)
        ctx.emit(c, "rolled_back", to_version=None, point=point.id)
        return
    backup = Path(point.backup_dir)
    definition = ctx.services.definition_path(c)
    saved_def = backup / str(definition.relative_to(layout.root)).replace("/", "__")
    rendered = saved_def.read_text() if saved_def.is_file() else runner.rendered(point.from_version)
    for rel in point.files:
        src = backup / rel.replace("/", "__")
        dest = layout.root / rel
        if src.is_file() and dest != definition:
            from obsplan.fsio import write_atomic

            write_atomic(dest, src.read_text())
    old = ctx.services.status(c)
    runner.switch_to(point.from_version, rendered)
    ctx.services.restart(c)
    runner.verify(point.from_version, old.pid if old.running else None)
    ctx.emit(c, "rolled_back", to_version=point.from_version, point=point.id, backup=point.backup_dir)


def _age_days(path: Path, now: float) -> float:
    return (now - path.stat().st_mtime) / 86400 if path.exists() else 0.0


def prune_used_backups(ctx: Context, component: str, now: float) -> list[str]:
    """Backups of rollback points already used (rolled back to): the same rule, newest `keep_versions` kept."""
    assert ctx.db is not None
    removed = []
    for i, p in enumerate(ctx.db.points(component, ("used",))):
        if i >= ctx.keep_versions or _age_days(Path(p.backup_dir), now) > ctx.keep_days:
            shutil.rmtree(p.backup_dir, ignore_errors=True)
            ctx.db.set_point_status(p.id, "expired")
            removed.append(f"used_point:{p.id}")
    return removed


def retention(ctx: Context, component: str) -> list[str]:
    """Keep the newest `keep_versions` versions and rollback points (and none older than `keep_days`),
    never the current version or the newest rollback target; backups of used points follow the same rule."""
    assert ctx.db is not None
    layout, db = ctx.layout, ctx.db
    current = layout.current_version(component)
    points = db.points(component, ("available",))
    protected = {current}
    now = time.time()
    removed = []
    for i, p in enumerate(points):
        age_days = (now - Path(p.backup_dir).stat().st_mtime) / 86400 if Path(p.backup_dir).exists() else 0
        if i >= ctx.keep_versions or (i > 0 and age_days > ctx.keep_days):
            shutil.rmtree(p.backup_dir, ignore_errors=True)
            db.set_point_status(p.id, "expired")
            removed.append(f"point:{p.id}")
        else:
            protected.add(p.from_version)
    removed += prune_used_backups(ctx, component, now)
    cdir = layout.component_dir(component)
    versions = [d for d in cdir.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith(".")]
    versions.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for i, d in enumerate(versions):
        if d.name in protected:
            continue
        too_old = (now - d.stat().st_mtime) / 86400 > ctx.keep_days
        if i >= ctx.keep_versions or too_old:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"version:{d.name}")
    return removed
