"""`planner.plan_hops` and `cross_rules.check_rules` called directly, on a small matrix: what they return, and
that they change nothing they are given."""

from __future__ import annotations

from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.plan.cross_rules import check_rules
from obsplan.compiler.plan.dag import ComponentPath, Hop, plan_hops
from obsplan.compiler.plan.risk_order import RISK_RANK, riskier

from obsplan.kernel.versions import Version

V = Version.parse
RULES = [
    {
        "id": "via-2.55",
        "kind": "required_hop",
        "component": "prometheus",
        "from": "<2.55.0",
        "to": ">=3.0.0",
        "via_line": "2.55",
        "reason": "TSDB format",
    },
    {
        "id": "am-first",
        "kind": "requires",
        "component": "prometheus",
        "to": ">=3.0.0",
        "requires": {"component": "alertmanager", "version": ">=0.16.0"},
        "reason": "v2 API",
    },
    {
        "id": "floor-3",
        "kind": "rollback_floor",
        "component": "prometheus",
        "to": ">=3.0.0",
        "floor": "2.55.0",
        "reason": "index format",
    },
    {
        "id": "loki-gate",
        "kind": "breaking",
        "component": "loki",
        "from": "<3.0.0",
        "to": ">=3.0.0",
        "gate": True,
        "reason": "schema v13",
    },
]
MATRIX = MatrixFile.model_validate({"rules": RULES})


def test_plan_hops_inserts_the_required_hop() -> None:
    hops, refusals = plan_hops("prometheus", V("2.48.1"), V("3.1.0"), [V("2.55.0"), V("2.55.1"), V("3.1.0")], MATRIX)
    assert [(str(h.from_version), h.id) for h in hops] == [
        ("2.48.1", "prometheus@2.55.1"),
        ("2.55.1", "prometheus@3.1.0"),
    ]
    assert [r.code for r in hops[0].reasons] == ["required_hop"]
    assert [r.code for r in hops[1].reasons] == ["data_format_change"] and hops[1].rollback_floor == V("2.55.0")
    assert refusals == []


def test_plan_hops_refuses_when_no_release_serves_the_required_hop() -> None:
    hops, refusals = plan_hops("prometheus", V("2.48.1"), V("3.1.0"), [V("3.1.0")], MATRIX)
    assert [h.id for h in hops] == ["prometheus@3.1.0"]
    assert {(r.rule, r.severity) for r in refusals} == {("via-2.55", "mandatory")}
    assert plan_hops("prometheus", V("3.1.0"), V("3.1.0"), [V("3.1.0")], MATRIX) == ([], [])


def _paths(prom_from: str, am_from: str, am_to: str) -> dict[str, ComponentPath]:
    return {
        "prometheus": ComponentPath("prometheus", "core", [Hop("prometheus", V(prom_from), V("3.1.0"))]),
        "alertmanager": ComponentPath("alertmanager", "core", [Hop("alertmanager", V(am_from), V(am_to))]),
    }


def test_requires_orders_the_other_component_first_without_touching_the_hops() -> None:
    paths = _paths("2.55.1", "0.15.0", "0.27.0")
    targets = {"prometheus": V("3.1.0"), "alertmanager": V("0.27.0")}
    out = check_rules(paths, targets, {}, MATRIX, set())
    assert out.edges == [("alertmanager@0.27.0", "prometheus@3.1.0")]
    assert [r.code for r in out.reasons["prometheus@3.1.0"]] == ["requires"]
    assert paths["prometheus"].hops[0].reasons == [] and out.refusals == []


def test_requires_refuses_when_the_other_stays_below_and_warns_when_it_is_not_managed() -> None:
    targets = {"prometheus": V("3.1.0"), "alertmanager": V("0.15.0")}
    out = check_rules(_paths("2.55.1", "0.14.0", "0.15.0"), targets, {}, MATRIX, set())
    assert [(r.rule, r.severity) for r in out.refusals] == [("am-first", "overridable")] and out.edges == []
    alone = {"prometheus": ComponentPath("prometheus", "core", [Hop("prometheus", V("2.55.1"), V("3.1.0"))])}
    out = check_rules(alone, {"prometheus": V("3.1.0")}, {}, MATRIX, set())
    assert list(out.warnings) == ["prometheus"] and "alertmanager is not managed here" in out.warnings["prometheus"][0]


def test_rollback_floor_refuses_going_back_below_it() -> None:
    paths = {"prometheus": ComponentPath("prometheus", "core", [Hop("prometheus", V("3.1.0"), V("2.53.0"))])}
    out = check_rules(paths, {"prometheus": V("2.53.0")}, {"prometheus": V("3.1.0")}, MATRIX, set())
    assert [r.rule for r in out.refusals] == ["floor-3"]
    assert check_rules(paths, {"prometheus": V("2.55.0")}, {"prometheus": V("3.1.0")}, MATRIX, set()).refusals == []


def test_a_gated_breaking_rule_refuses_until_allowed() -> None:
    hops, _ = plan_hops("loki", V("2.9.3"), V("3.0.0"), [V("3.0.0")], MATRIX)
    paths = {"loki": ComponentPath("loki", "logs", hops)}
    assert [r.rule for r in check_rules(paths, {"loki": V("3.0.0")}, {}, MATRIX, set()).refusals] == ["loki-gate"]
    assert check_rules(paths, {"loki": V("3.0.0")}, {}, MATRIX, {"loki-gate"}).refusals == []


def test_risk_levels_are_ranked_once() -> None:
    assert sorted(RISK_RANK, key=RISK_RANK.__getitem__) == ["low", "medium", "high"]
    assert riskier("high", "medium") and not riskier("low", "low")
