"""The strategy each component gets, decided directly (not through the CLI): the precedence of docs/configuration.md, rung by rung."""

from __future__ import annotations

import pytest
from obsplan.compiler.config.specs_stage import decide_strategy
from obsplan.compiler.config.versions_file import ComponentSpec

ENTRY_LATEST = ComponentSpec(strategy="latest")
ENTRY_BARE = ComponentSpec()


@pytest.mark.parametrize(
    ("base", "override", "env_default", "expected"),
    [
        (ENTRY_LATEST, ComponentSpec(strategy="lts", version="1.7.0"), "range", "lts"),  # override strategy wins
        (ENTRY_LATEST, ComponentSpec(version="1.7.0"), None, "pinned"),  # version-only override beats the entry
        (ENTRY_LATEST, ComponentSpec(exclude=["1.8.0"]), "pinned", "latest"),  # entry beats environment default
        (ENTRY_BARE, None, "pinned", "pinned"),  # environment default beats global
        (ENTRY_BARE, ComponentSpec(exclude=["1.8.0"]), None, "lts"),  # global default last
    ],
)
def test_precedence(
    base: ComponentSpec, override: ComponentSpec | None, env_default: str | None, expected: str
) -> None:
    assert decide_strategy(base, override, env_default, "lts") == expected  # type: ignore[arg-type]
