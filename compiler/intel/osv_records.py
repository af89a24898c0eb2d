"""OSV records (osv.dev schema) reduced to the fields the advisory evaluation uses, read from vendored JSON
files and api.osv.dev responses; a record that does not fit is refused, naming its file."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import AdvisoryId, AdvisorySeverity

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


class OsvEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["introduced", "fixed", "last_affected", "limit"]
    version: str


class OsvRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    events: list[OsvEvent]


class OsvAffected(BaseModel):
    """One `affected[]` entry, reduced to what the evaluation uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str
    ecosystem: str
    ranges: list[OsvRange] = []
    versions: list[str] = []
    custom_ranges: list[OsvRange] = []


class OsvRecord(BaseModel):
    """The fields the evaluation uses; ids and severity in the shape the lock records (refused here, naming the
    file, rather than when the lock is written)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: AdvisoryId
    aliases: list[AdvisoryId] = []
    summary: str | None = None
    severity: AdvisorySeverity | None = None
    withdrawn: str | None = None
    affected: list[OsvAffected] = []
    source: str


def record_from_json(data: Any, source: str) -> OsvRecord:
    """Keep the OSV fields the evaluation uses; the schema has many more and keeps growing."""
    try:
        affected = []
        for a in data.get("affected", []):
            custom = (a.get("ecosystem_specific") or {}).get("custom_ranges", [])
            affected.append(
                OsvAffected(
                    package=a["package"]["name"],
                    ecosystem=a["package"].get("ecosystem", ""),
                    ranges=[_range(r) for r in a.get("ranges", []) if r.get("type") in ("SEMVER", "ECOSYSTEM")],
                    versions=a.get("versions", []),
                    custom_ranges=[_range(r) for r in custom],
                )
            )
        severity = (data.get("database_specific") or {}).get("severity")
        if severity is None and data.get("severity"):
            severity = data["severity"][0].get("score")
        return OsvRecord(
            id=data["id"],
            aliases=data.get("aliases") or [],
            summary=data.get("summary"),
            severity=severity,
            withdrawn=data.get("withdrawn"),
            affected=affected,
            source=source,
        )
    except ValidationError as exc:
        err = exc.errors()[0]  # the field as this module reads it, so no JSON key is claimed
        field = ".".join(str(p) for p in err["loc"])
        raise ObsplanError(f"not an OSV record ({field}: {err['msg']})", file=source) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ObsplanError(f"not an OSV record ({type(exc).__name__}: {exc})", file=source) from None


def _range(raw: dict[str, Any]) -> OsvRange:
    events = [OsvEvent(kind=k, version=str(v)) for ev in raw["events"] for k, v in ev.items() if k in _EVENT_KINDS]
    return OsvRange(type=raw["type"], events=events)


def parse_osv_response(payload: Any, source: str = "api.osv.dev") -> list[OsvRecord]:
    """Records of a `/v1/query` response (`{"vulns": [...]}`; an empty result is `{}`)."""
    if not isinstance(payload, dict):
        raise ObsplanError("unexpected OSV response (not a JSON object)", file=source)
    return [record_from_json(v, f"{source}:{v.get('id', '?')}") for v in payload.get("vulns", [])]
