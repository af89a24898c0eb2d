"""Issue 18, rollout numbers: `--batches inf%`, `--soak nan`, `--interval 0`, `--initial-delay inf`, a malformed
`--prometheus` URL, a `--limit`/`--canary-hosts` naming no host, a blank `--gate` and their variants are bad input (exit 2) while the command line is parsed, before any host
is touched (`--dry-run` included: the journal directory is never even created), for `rollout` and for
`export ansible`, which shares the options. The checks themselves are fuzzed: only a clean refusal, never
another exception."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from obsplan.cli.main import main
from obsplan.kernel.errors import ObsplanError
from obsplan.rollout import numbers
from obsplan.rollout.batches import plan_batches
from tests.reliability.conftest import FUZZ_EXAMPLES, Record

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "plans" / "production.lock"

HOSTILE = [
    ("--batches", "inf%"),
    ("--batches", "10%,nan%,100%"),
    ("--batches", "1e400%"),
    ("--batches", "-inf%,100%"),
    ("--batches", "0%,100%"),
    ("--batches", "150%"),
    ("--batches", "-1,100%"),
    ("--batches", ","),
    ("--soak", "nan"),
    ("--soak", "inf"),
    ("--soak", "-1"),
    ("--soak", "1e300"),
    ("--interval", "0"),
    ("--interval", "-0.0"),
    ("--interval", "nan"),
    ("--initial-delay", "inf"),
    ("--initial-delay", "-5"),
    ("--prometheus", "http://[::1"),
    ("--prometheus", "ftp://prom:9090"),
    ("--prometheus", "http://"),
    ("--prometheus", "prometheus:9090"),
    ("--prometheus", "http://prom:99999"),
    ("--prometheus", "http://prom:9090/\nx"),
    ("--canary", "-1"),
    ("--failure-limit", "-1"),
    ("--health-timeout", "nan"),
    ("--health-timeout", "0"),
    ("--limit", ""),  # an unset shell variable: never "every host"
    ("--limit", ",,"),
    ("--canary-hosts", ""),
    ("--canary-hosts", " , "),
    ("--gate", ""),
    ("--gate", "  "),
]
ROLLOUT_ONLY = ("--failure-limit", "--health-timeout", "--limit", "--canary-hosts")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One host at a port nothing listens on: were it ever contacted, the exit would be 1, not 2."""
    path = tmp_path_factory.mktemp("inv") / "hosts.yaml"
    path.write_text(json.dumps({"hosts": {"web1": {"address": "127.0.0.1", "port": 1, "components": ["loki"]}}}))
    return path


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "rollout"])
@pytest.mark.parametrize(("flag", "value"), HOSTILE)
def test_rollout_number_is_refused_at_parse_time(
    flag: str, value: str, dry_run: bool, inventory: Path, tmp_path: Path, outcomes: Record
) -> None:
    state = tmp_path / "state"
    args = ["rollout", str(LOCK), "--inventory", str(inventory), "--state-dir", str(state), flag, value]
    result = CliRunner().invoke(main, args + (["--dry-run"] if dry_run else []))
    outcomes(f"rollout numbers: {flag}", result.exit_code, result.exit_code == 2)
    assert result.exit_code == 2, (result.output, result.exception)
    assert flag in result.output and "Traceback" not in result.output
    assert not state.exists()  # no journal: nothing started


@pytest.mark.parametrize(("flag", "value"), [h for h in HOSTILE if h[0] not in ROLLOUT_ONLY])
def test_export_ansible_refuses_the_same_numbers(flag: str, value: str, tmp_path: Path, outcomes: Record) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "ansible", str(LOCK), "-o", str(out), flag, value])
    outcomes(f"export ansible numbers: {flag}", result.exit_code, result.exit_code == 2)
    assert result.exit_code == 2, (result.output, result.exception)
    assert not out.exists()


NUMBERISH = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(alphabet="0123456789.e-+%naif", max_size=12),
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(
    parts=st.lists(st.one_of(NUMBERISH, NUMBERISH.map(lambda s: s + "%")), min_size=0, max_size=5),
    hosts=st.integers(min_value=0, max_value=50),
    canary=st.integers(min_value=-2, max_value=60),
)
def test_batches_never_raise_anything_but_bad_input(parts: list[str], hosts: int, canary: int) -> None:
    spec = ",".join(parts)
    try:
        numbers.batch_spec(spec)
        batches = plan_batches([f"h{i}" for i in range(hosts)], canary, spec)
    except ObsplanError as exc:
        assert exc.key in ("--batches", "--canary")
        return
    assert sorted(n for b in batches for n in b.hosts) == sorted(f"h{i}" for i in range(hosts))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True), url=st.text(max_size=40))
def test_seconds_and_urls_are_checked_or_refused(value: float, url: str) -> None:
    for flag in numbers.LIMITS:
        try:
            assert math.isfinite(numbers.seconds(flag, value) or 0.0)
        except ObsplanError as exc:
            assert exc.key == flag
    for candidate in (url, "http://" + url, "http://h:9090/" + url):
        try:
            assert numbers.prometheus_url(candidate) == candidate
        except ObsplanError as exc:
            assert exc.key == "--prometheus"


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(value=st.text(alphabet=" ,\tab=", max_size=12))
def test_host_lists_name_a_host_or_are_refused(value: str) -> None:
    try:
        assert numbers.host_names("--limit", value) == value
        assert any(p.strip() for p in value.split(","))
    except ObsplanError as exc:
        assert exc.key == "--limit" and not any(p.strip() for p in value.split(","))
