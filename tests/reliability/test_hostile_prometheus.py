"""Gates against a hostile Prometheus (issue 18): whatever a real local HTTP server answers — not JSON, the
wrong shape, NaN/±Inf samples, nested 100,000 deep, a byte a second, headers that never end, a gzip bomb —
the gate takes a *failed measurement*, within its deadline and without holding the expanded bytes. And
`$HOSTS` can never add a matcher, whatever a host is called."""

from __future__ import annotations

import json
import re
import resource
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obsplan.rollout import gates
from obsplan.rollout.gates import GateSpec, expand, measure, run_gate
from tests.reliability.conftest import FUZZ_EXAMPLES, Record, no_hang
from tests.reliability.hostile_http import hostile_server


def _vector(*values: Any) -> bytes:
    result = [{"metric": {"instance": f"h{i}"}, "value": [0, v]} for i, v in enumerate(values)]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


HOSTILE: dict[str, bytes] = {
    "list": b"[]",
    "datalist": b'{"status":"success","data":[]}',
    "number": b"5",
    "null": b"null",
    "string": b'"success"',
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "nestedobj": b'{"status":"success","data":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
    "nan": _vector("NaN"),
    "inf": _vector("+Inf"),
    "minf": _vector("1", "-Inf"),
    "text": _vector("abc"),
    "bare": _vector(1),
    "short": json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"value": [0]}]}}).encode(),
    "metric": json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"metric": 5}]}}).encode(),
    "scalarnan": b'{"status":"success","data":{"resultType":"scalar","result":[0,"NaN"]}}',
    "matrix": b'{"status":"success","data":{"resultType":"matrix","result":[{"values":[[0,"1"]]}]}}',
    "resultobj": b'{"status":"success","data":{"resultType":"vector","result":{"a":1}}}',
    "bigint": b'{"status":"success","data":{"resultType":"vector","result":[{"value":[0,"' + b"9" * 5000 + b'"]}]}}',
    "errorobj": b'{"status":"error","error":{"deep":[1,2,3]}}',
    "notutf8": b'{"status":"success","data":{"resultType":"vector","result":[{"value":[0,"\xff"]}]}}',
    "dupkeys": b'{"status":"success","status":"success","data":{"resultType":"scalar","result":[0,"1"]}}',
    "jsonnan": b'{"status":"success","data":{"resultType":"scalar","result":[0,NaN]}}',
    "good": _vector("1", "2"),
}
SLOW = ["drip", "headdrip", "bomb", "silent"]


@pytest.fixture(scope="module")
def prom() -> Any:
    with hostile_server(HOSTILE) as url:
        yield url


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "ANSWER_DEADLINE", 3.0)


@pytest.mark.parametrize("case", [c for c in HOSTILE if c != "good"])
def test_hostile_answer_is_a_failed_measurement(prom: str, case: str, outcomes: Record) -> None:
    with no_hang(60):
        m = measure(f"{prom}/{case}", ["up"])
    outcomes(f"prometheus::{case}", 0 if not m.ok else 3, not m.ok)
    assert not m.ok, m.results
    reason = m.results[0]["reason"]
    assert isinstance(reason, str) and len(reason) < 400, reason
    json.dumps(m.to_dict())  # journalled as JSON


def test_a_sound_answer_still_passes(prom: str) -> None:
    m = measure(f"{prom}/good", ["up"])
    assert m.ok and m.results[0]["samples"] == [1.0, 2.0]


@pytest.mark.parametrize("case", SLOW)
def test_slow_or_bombing_prometheus_is_cut(prom: str, case: str, short_deadline: None, outcomes: Record) -> None:
    """A drip, endless headers, silence: cut at the deadline; a 512 MiB gzip bomb: cut at the size limit, the
    process's peak memory staying far below what the bomb expands to."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with no_hang(60):
        m = measure(f"{prom}/{case}", ["up"])
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    outcomes(f"prometheus::{case}", 0 if not m.ok else 3, not m.ok)
    assert not m.ok
    assert grown_mib < 128, f"peak memory grew by {grown_mib:.0f} MiB"
    expected = "larger than" if case == "bomb" else "within 3 s"
    assert expected in m.results[0]["reason"], m.results


def test_gate_over_hostile_answers_fails_and_stops(prom: str) -> None:
    spec = GateSpec([f"up{{x='{i}'}}" for i in range(2)], f"{prom}/nan", 2, 1, 0, failure_limit=0)
    seen: list[Any] = []
    assert not run_gate(spec, ["web1"], lambda n, m: seen.append(m), sleep=lambda s: None)
    assert len(seen) == 1 and not seen[0].ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["success", "error"]) | json_values,
        "data": st.fixed_dictionaries(
            {
                "resultType": st.sampled_from(["vector", "scalar", "matrix"]) | json_values,
                "result": st.lists(
                    st.fixed_dictionaries(
                        {"metric": json_values, "value": st.lists(json_values | st.sampled_from(["NaN", "1"]))}
                    ),
                    max_size=3,
                )
                | json_values,
            }
        )
        | json_values,
    }
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=shaped | json_values)
def test_fuzzed_answers_never_crash_and_pass_only_on_finite_nonzero_samples(body: Any, outcomes: Record) -> None:
    m = gates.Measurement(False)
    try:
        result = gates._judge("up", body)
        m = gates.Measurement(result["ok"], [result])
        code = 0
    except gates._Malformed:
        code = 0  # a failed measurement (see _query)
    except Exception:  # noqa: BLE001 - counted as the internal error it would be
        code = 3
    outcomes("prometheus::fuzzed answers", code, code != 3)
    assert code != 3
    if m.ok:
        assert all(
            isinstance(s, float) and s == s and abs(s) != float("inf") and s != 0 for s in m.results[0]["samples"]
        )


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(names=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4))
def test_hosts_never_leave_the_promql_string(names: list[str], outcomes: Record) -> None:
    """Whatever a host is called (`"`, `\\`, `}`, newlines), `$HOSTS` is one string of regex escapes: no quote,
    no raw backslash sequence other than a doubled one, no control character."""
    got = expand('up{instance=~"($HOSTS)"}', names)
    inner = got[len('up{instance=~"(') : -len(')"}')]
    ok = '"' not in inner and "\n" not in inner and inner.replace("\\\\", "").count("\\") == 0
    outcomes("prometheus::$HOSTS names", 0 if ok else 3, ok)
    assert ok, inner
    assert all(c.isascii() and c.isprintable() for c in inner)


@pytest.mark.parametrize("name", ['a"}or vector(1)#', "x\\y", "new\nline", "10.0.0.1"])
def test_ansible_export_escapes_hosts_and_refuses_nan_as_obsplan_does(name: str, outcomes: Record) -> None:
    """The exported playbook's `$HOSTS` and gate condition, rendered with Ansible's own filters: no quote leaves
    the PromQL string; NaN/±Inf never pass."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    from obsplan.rollout.ansible_export import GATE_OK, HOSTS_REGEX

    def render(expr: str, **variables: Any) -> Any:  # Ansible's own templar, as the playbook run renders it
        return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expr))

    done = HOSTS_REGEX.replace("hostvars['localhost']['obsplan_done']", "done")
    inner = render(done, done=[name], hostvars={name: {}})
    ok = '"' not in inner and inner.replace("\\\\", "").count("\\") == 0
    # what RE2 receives once PromQL unescaped the string matches the host's name, and only it
    regex = re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: "\\x" + m.group(1).zfill(2), inner.replace("\\\\", "\\"))
    ok = ok and re.fullmatch(regex, name) is not None and re.fullmatch(regex, name + "x") is None

    def passes(*values: str) -> bool:
        result = [{"value": [0, v]} for v in values]
        gate = {"json": {"status": "success", "data": {"result": result}}}
        return bool(render("{{ " + GATE_OK + " }}", gate=gate))

    ok = ok and passes("1", "2") and not any(passes(*v) for v in (["1", "NaN"], ["NaN", "1"], ["+Inf"], ["0"]))
    outcomes("prometheus::ansible export", 0 if ok else 3, ok)
    assert ok, inner
