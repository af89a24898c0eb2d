"""What a command does not import, and what the SSH worker replaces: the start-up costs `bench/bench_cli.py` and
`bench/bench_rollout_scale.py` measured, kept from coming back. Each check runs in a fresh interpreter (the worker
monkeypatches the process it is imported into)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        # a rollout without gates needs no HTTP client (httpx also loads rich and pygments) and no event loop
        (("obsplan.cli.rollout_commands", "obsplan.rollout.orchestrator"), ("httpx", "asyncio", "rich")),
        # `plan` without --facts builds no host-facts models; offline it needs no HTTP client
        (("obsplan.cli.plan_commands",), ("obsplan.lock.hostfacts", "httpx")),
    ],
)
def test_a_command_imports_only_what_its_common_path_needs(modules: tuple[str, ...], absent: tuple[str, ...]) -> None:
    code = f"import importlib, sys\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
    code += f"print(sorted(m for m in {absent!r} if m in sys.modules))"
    assert _fresh(code) == "[]"


def test_the_worker_compares_macs_in_c_and_skips_invoke() -> None:
    code = (
        "import hmac, sys\n"
        "import obsplan.rollout.worker\n"
        "import paramiko.util\n"
        "print(paramiko.util.constant_time_bytes_eq is hmac.compare_digest, sys.modules.get('invoke', 0) is None)"
    )
    assert _fresh(code) == "True True"


@pytest.mark.parametrize(
    ("a", "b"), [(b"", b""), (b"\x00" * 32, b"\x00" * 32), (b"\x00" * 32, b"\x00" * 31 + b"\x01"), (b"ab", b"abc")]
)
def test_the_replacement_answers_as_paramikos_own(a: bytes, b: bytes) -> None:
    """The MAC check the worker swaps in gives paramiko's answer (equal bytes, unequal bytes, unequal lengths)."""
    code = (
        "import paramiko.util as u\n"
        f"own = u.constant_time_bytes_eq({a!r}, {b!r})\n"
        "import hmac\n"
        f"print(own == hmac.compare_digest({a!r}, {b!r}), own)"
    )
    assert _fresh(code).split()[0] == "True"
