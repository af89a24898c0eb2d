"""`resolve.choose` called directly: each strategy's pick, the lock's version kept, no downgrade, and the
errors that name the key to fix."""

from __future__ import annotations

from datetime import date

import pytest
from obsplan.compiler.config.catalog import builtin_definitions, resolve_definition
from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.config.versions_file import ComponentSpec, Strategy
from obsplan.compiler.resolve.pick_target import Candidates, Target, choose
from obsplan.compiler.sources.releases import Release

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version

V = Version.parse
TODAY = date(2026, 11, 22)
MATRIX = MatrixFile.model_validate(
    {"support": {"prometheus": [{"line": "2.53", "end": "2027-01-01", "lts": True}, {"line": "2.55"}]}}
)
USABLE = Candidates({V(v): Release(tag=f"v{v}") for v in ["2.53.1", "2.53.4", "2.55.1", "3.0.0"]})


def pick(
    spec: ComponentSpec,
    strategy: Strategy,
    current: str | None = None,
    kept: str | None = None,
    cands: Candidates = USABLE,
) -> Target:
    defn = resolve_definition("prometheus", spec, builtin_definitions(), "versions.yaml")
    return choose(
        defn,
        spec,
        strategy,
        cands,
        current=V(current) if current else None,
        kept=V(kept) if kept else None,
        matrix=MATRIX,
        today=TODAY,
        file="versions.yaml",
    )


def codes(t: Target) -> tuple[str, list[str]]:
    return str(t.version), [r.code for r in t.reasons]


def test_each_strategy_picks_by_version() -> None:
    assert codes(pick(ComponentSpec(), "latest")) == ("3.0.0", ["newest_stable"])
    assert codes(pick(ComponentSpec(version_range=">=2.0.0 <3.0.0"), "range")) == ("2.55.1", ["newest_in_range"])
    assert codes(pick(ComponentSpec(), "lts")) == ("2.53.4", ["lts_line"])
    assert codes(pick(ComponentSpec(version="2.53.1"), "pinned")) == ("2.53.1", ["pinned"])


def test_pinned_without_a_version_holds_the_lock_then_the_installed_version() -> None:
    assert codes(pick(ComponentSpec(), "pinned", current="2.53.1", kept="2.55.1")) == ("2.55.1", ["pinned"])
    assert codes(pick(ComponentSpec(), "pinned", current="2.53.1")) == ("2.53.1", ["pinned"])
    assert pick(ComponentSpec(fallback_version="2.53.4"), "pinned").version == V("2.53.4")


def test_pinned_below_the_installed_version_is_a_downgrade() -> None:
    assert codes(pick(ComponentSpec(version="2.53.1"), "pinned", current="2.55.1")) == (
        "2.53.1",
        ["pinned", "downgrade"],
    )


def test_the_lock_version_is_kept_while_it_fits() -> None:
    kept = pick(ComponentSpec(), "latest", kept="2.55.1")
    assert codes(kept) == ("2.55.1", ["kept_from_lock"])
    assert "3.0.0 is available (use --upgrade)" in kept.reasons[0].detail
    in_range = ComponentSpec(version_range=">=2.0.0 <2.55.0")
    assert pick(in_range, "range", kept="2.55.1").version == V("2.53.4")  # the lock's version left the range


def test_never_a_downgrade_unless_pinned() -> None:
    assert codes(pick(ComponentSpec(), "latest", current="3.1.0")) == ("3.1.0", ["no_downgrade"])


@pytest.mark.parametrize(
    ("spec", "strategy", "key"),
    [
        (ComponentSpec(), "pinned", "components.prometheus.version"),
        (ComponentSpec(version="2.53.1", exclude=["2.53.1"]), "pinned", "components.prometheus.exclude"),
        (ComponentSpec(version="2.54.0"), "pinned", "components.prometheus.version"),  # not a usable release
        (ComponentSpec(), "range", "components.prometheus.version_range"),
        (ComponentSpec(version_range=">=4.0.0"), "range", "components.prometheus.version_range"),
    ],
)
def test_errors_name_the_key(spec: ComponentSpec, strategy: Strategy, key: str) -> None:
    with pytest.raises(ObsplanError) as err:
        pick(spec, strategy)
    assert err.value.key == key and err.value.file == "versions.yaml"


def test_lts_and_latest_errors() -> None:
    with pytest.raises(ObsplanError, match="no usable release in LTS line 2.53"):
        pick(ComponentSpec(), "lts", cands=Candidates({V("3.0.0"): Release(tag="v3.0.0")}))
    with pytest.raises(ObsplanError, match="no usable release of prometheus/prometheus"):
        pick(ComponentSpec(), "latest", cands=Candidates({}))
