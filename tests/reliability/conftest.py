"""The reliability suite (issue 9: trust boundary): hostile inputs get a clean refusal and change nothing.

Run it alone:  OBSPLAN_FUZZ_EXAMPLES=1000 python -m pytest tests/reliability -q

Every test module in this directory is picked up by the closing table automatically: one row per test
function (its parametrisations together), counting runs and passes. Tests that run many inputs inside one
test (the hypothesis fuzzers) add rows of their own through the `outcomes` fixture, with the exit codes seen.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FUZZ_EXAMPLES = int(os.environ.get("OBSPLAN_FUZZ_EXAMPLES", "50"))


@dataclass
class Row:
    runs: int = 0
    passed: int = 0
    exits: Counter[int] = field(default_factory=Counter)


_ROWS: dict[str, Row] = {}


def _in_suite(path: str | os.PathLike[str]) -> bool:
    return Path(path).resolve().is_relative_to(HERE)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _in_suite(report.fspath):
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        name = report.nodeid.split("::", 1)[-1].split("[", 1)[0]
        row = _ROWS.setdefault(f"{Path(report.fspath).stem}::{name}", Row())
        row.runs += 1
        row.passed += int(report.passed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _ROWS:
        return
    tr = terminalreporter
    width = max(len(k) for k in _ROWS) + 2
    tr.section("reliability: case, runs, passed")
    tr.write_line(f"{'case':<{width}}{'runs':>7}{'passed':>8}  exit codes")
    for name in sorted(_ROWS):
        row = _ROWS[name]
        exits = " ".join(f"{code}:{n}" for code, n in sorted(row.exits.items()))
        tr.write_line(f"{name:<{width}}{row.runs:>7}{row.passed:>8}  {exits}")
    exit3 = sum(r.exits.get(3, 0) for r in _ROWS.values())
    tr.write_line(f"exit 3 (internal error) outcomes: {exit3}")


Record = Callable[[str, int, bool], None]


@pytest.fixture(scope="session")
def outcomes() -> Record:
    """`record(case, exit_code, ok)`: one input run inside a test (a row of its own in the closing table)."""

    def record(case: str, exit_code: int, ok: bool) -> None:
        row = _ROWS.setdefault(case, Row())
        row.runs += 1
        row.passed += int(ok)
        row.exits[exit_code] += 1

    return record


class Hang(BaseException):
    """Raised by the alarm: not an Exception, so obsplan's error edge cannot turn it into an exit code."""


@contextmanager
def no_hang(seconds: int = 60) -> Iterator[None]:
    """Fail (raise Hang) when the block runs longer than `seconds`: a guard against hangs, not a timing test."""

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
