"""The compatibility matrix: rules (required hops, rollback floors, cross-component requirements, caps,
move-together groups, curated breaking changes) and release-line support dates."""

from __future__ import annotations

from typing import Literal

from obsplan.compiler.config.model_errors import Strict
from pydantic import ConfigDict, Field, model_validator

from obsplan.kernel.pathtypes import IsoDate
from obsplan.kernel.version_types import RangeValue, VersionValue
from obsplan.kernel.versions import Version

Severity = Literal["mandatory", "overridable"]


class Requirement(Strict):
    component: str
    version: RangeValue


class Rule(Strict):
    id: str
    kind: Literal["required_hop", "rollback_floor", "requires", "max_version", "move_together", "breaking"]
    component: str | None = None
    components: list[str] = Field(default_factory=list)
    from_: RangeValue | None = Field(default=None, alias="from")
    to: RangeValue | None = None
    via_line: str | None = None
    floor: VersionValue | None = None
    requires: Requirement | None = None
    versions: RangeValue | None = None
    severity: Severity = "overridable"
    gate: bool = False
    reason: str
    hint: str | None = None
    source: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        need: dict[str, list[str]] = {
            "required_hop": ["component", "from_", "to", "via_line"],
            "rollback_floor": ["component", "to", "floor"],
            "requires": ["component", "to", "requires"],
            "max_version": ["component", "versions"],
            "move_together": ["components"],
            "breaking": ["component", "to"],
        }
        missing = [f.rstrip("_") for f in need[self.kind] if not getattr(self, f)]
        if missing:
            raise ValueError(f"rule {self.id!r} of kind {self.kind} needs: {', '.join(missing)}")
        return self

    def matches_from(self, v: Version | None) -> bool:
        if self.from_ is None:
            return True
        return v is not None and self.from_.contains(v)

    def matches_to(self, v: Version) -> bool:
        return self.to is None or self.to.contains(v)


class SupportLine(Strict):
    line: str = Field(max_length=32)
    start: IsoDate | None = None
    end: IsoDate | None = None
    lts: bool = False

    @property
    def line_start(self) -> Version:
        """The line's first release (`3.5` → 3.5.0), to order lines by."""
        return Version.parse(self.line + ".0")


class MatrixFile(Strict):
    rules: list[Rule] = Field(default_factory=list)
    support: dict[str, list[SupportLine]] = Field(default_factory=dict)
