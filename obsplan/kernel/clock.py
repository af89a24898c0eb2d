"""The one wall-clock timestamp format obsplan writes (events, journals, reports): UTC, ISO 8601, microseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
