"""The target release's own verdict on the configuration the service runs with, asked before anything is
switched (`check:` of policies/services.yaml): `promtool check config` (rule files included) for Prometheus,
`amtool check-config` for Alertmanager, the binary's own check mode where there is no separate tool.

The checker is the one of the release being switched *to* (an upgrade's target, a manual rollback's
version), run from that release's directory, never the installed one: the question is whether the version
about to run accepts the configuration, which only that version can answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from obsplan.executor.artifacts.store import find_binary
from obsplan.executor.host.layout import Layout
from obsplan.executor.services.service_render import render_check

from obsplan.lock.lockfile import Runtime
from obsplan.lock.service_def import Check

Outcome = Literal["accepted", "refused", "unavailable"]
MAX_OUTPUT = 2000


@dataclass(frozen=True)
class Verdict:
    component: str
    version: str
    tool: str
    config: str
    outcome: Outcome
    output: str  # what the checker said (its complaint when it refused), trimmed
    seconds: float
    argv: list[str]

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"

    def to_dict(self) -> dict[str, Any]:
        """The event metadata (the component is the event's own)."""
        data = asdict(self)
        data.pop("component")
        data["seconds"] = round(self.seconds, 3)
        return data

    def complaint(self) -> str:
        """One line: the checker's own words naming the file (promtool: `FAILED: parsing YAML file …`)."""
        lines = [ln.strip() for ln in self.output.splitlines() if ln.strip()]
        first = next((i for i, ln in enumerate(lines) if "FAIL" in ln.upper() or "error" in ln.lower()), 0)
        text = " | ".join(lines[first : first + 12]) or f"{self.tool} failed without saying why"
        return text if self.config in text else f"{self.config}: {text}"


def check_release(
    component: str, runtime: Runtime, version: str, release: Path, layout: Layout, content: Path | None = None
) -> Verdict | None:
    """Run `version`'s checker (found in `release`, its extracted directory) against the host's configuration,
    or against `content` (a rollback point's saved copy, which a restore puts back) checked in its place.
    None: nothing to check (no checker declared, no configuration file named or present on the host)."""
    check = runtime.service.for_version(version).check
    if check is None or runtime.config_file is None:
        return None
    config = layout.host(runtime.config_file)
    if not (content or config).is_file():
        return None
    tool = find_binary(release, runtime.binaries.get(check.tool, f"*{check.tool}"))
    if tool is None:
        msg = f"{release.name} has no {check.tool}: the configuration could not be checked"
        return Verdict(component, version, check.tool, str(config), "unavailable", msg, 0.0, [])
    if content is None:
        return _run(component, version, check, render_check(component, runtime, version, layout, check, tool), config)
    # next to the live file, so the paths it names relative to its directory (rule files) resolve the same
    stand_in = _stand_in(config, content)
    try:
        rt = runtime.model_copy(update={"config_file": "/" + str(stand_in.relative_to(layout.root))})
        verdict = _run(component, version, check, render_check(component, rt, version, layout, check, tool), stand_in)
        saved = f"{config} as the rollback point saved it"
        return replace(verdict, config=saved, output=verdict.output.replace(str(stand_in), saved))
    finally:
        stand_in.unlink(missing_ok=True)


def _stand_in(config: Path, content: Path) -> Path:
    """A copy of `content` beside `config` under a fresh name, created exclusively: the configuration's folder may
    be writable by the service's own user, and a link planted there under a predictable name must never make
    this (root) process write through it."""
    stand_in = config.with_name(f".obsplan-check-{os.getpid()}-{os.urandom(6).hex()}-{config.name}")
    fd = os.open(stand_in, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out, content.open("rb") as src:
        shutil.copyfileobj(src, out)
    return stand_in


def _run(component: str, version: str, check: Check, argv: list[str], config: Path) -> Verdict:
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=check.timeout_seconds,
            cwd=config.parent,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        output, outcome = f"{check.tool} did not answer within {check.timeout_seconds}s", "refused"
    except OSError as exc:
        output, outcome = f"cannot run {argv[0]}: {exc.strerror}", "unavailable"
    else:
        output = (proc.stdout + proc.stderr).strip()[-MAX_OUTPUT:]
        outcome = "accepted" if proc.returncode == 0 else "refused"
    return Verdict(component, version, check.tool, str(config), outcome, output, time.monotonic() - t0, argv)  # type: ignore[arg-type]
