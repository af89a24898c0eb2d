"""doit glue: plan steps as doit tasks through a custom TaskLoader2 (no dodo.py), run one phase at a time."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from doit.cmd_base import TaskLoader2
from doit.task import dict_to_task
from obsplan.executor.host.probes import pid_alive
from obsplan.executor.stages.step_results import StepResult
from obsplan.executor.stages.step_runner import StepRunner


class PlanLoader(TaskLoader2):
    """Hands doit the tasks compiled from the lock (API 2 loader, no dodo.py)."""

    def __init__(self, tasks: list[dict[str, Any]], dep_file: str, reporter: Any) -> None:
        super().__init__()
        self.tasks, self.dep_file, self.reporter = tasks, dep_file, reporter

    def setup(self, opt_values: Any) -> None:
        return None

    def load_doit_config(self) -> dict[str, Any]:
        return {"dep_file": self.dep_file, "backend": "json", "verbosity": 2, "reporter": self.reporter}

    def load_tasks(self, cmd: Any, pos_args: Any) -> list[Any]:
        return [dict_to_task(dict(t)) for t in self.tasks]


class DoitBridge:
    """A doit reporter instance: forwards doit's view (up to date, failure) into our results/events."""

    def __init__(self, runners: dict[str, StepRunner]) -> None:
        self.runners = runners
        self.errors: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None: ...
    def get_status(self, task: Any) -> None: ...
    def execute_task(self, task: Any) -> None: ...
    def add_success(self, task: Any) -> None: ...
    def skip_uptodate(self, task: Any) -> None: ...
    def skip_ignore(self, task: Any) -> None: ...
    def teardown_task(self, task: Any) -> None: ...
    def complete_run(self) -> None: ...

    def add_failure(self, task: Any, fail: Any) -> None:
        runner = self.runners.get(task.name)
        if runner is None or runner.result is not None:
            return
        text = fail.get_msg() if hasattr(fail, "get_msg") else str(fail)
        if type(fail).__name__ == "UnmetDependency":
            runner.result = StepResult(runner.step.id, runner.c, "skipped", "dependency_failed", {"error": text})
            runner.emit("step_skipped", reason="dependency_failed")
        else:
            runner.result = StepResult(runner.step.id, runner.c, "failed", "internal_error", {"error": text})
            runner.emit("step_failed", reason="internal_error", error=text[-2000:])

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(str(exception))

    def runtime_error(self, msg: str) -> None:
        self.errors.append(msg)


def task_name(step_id: str) -> str:
    return "step_" + re.sub(r"[^A-Za-z0-9_.-]", "_", step_id)


def clean_stale_doit_dirs() -> None:
    """doit's throw-away dependency files of runs that were killed (their pid is gone)."""
    for stale in Path(tempfile.gettempdir()).glob("obsplan-doit-*-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
