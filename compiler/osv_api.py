"""The OSV query API (`POST {url}/v1/query`), used when online and `osv_api.enabled` is set in the policy.

Answers are cached like release data (same directory and TTL); any failure leaves the plan with the local
records only and says so, it never blocks planning.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan.errors import ObsplanError
from obsplan.fsio import write_atomic
from obsplan.versions import Version

from .advisories import AdvisoryMappings, OsvRecord, osv_queries, parse_osv_response

if TYPE_CHECKING:
    import httpx


@dataclass
class OsvClient:
    client: httpx.AsyncClient
    url: str
    mappings: AdvisoryMappings
    cache_dir: Path | None
    ttl: timedelta
    now: datetime
    failures: dict[str, list[str]] = field(default_factory=dict)

    async def records(self, wanted: dict[str, set[Version]]) -> list[OsvRecord]:
        """Every record the API returns for these component versions (deduplicated by id)."""
        bodies = [
            (comp, b)
            for comp, versions in sorted(wanted.items())
            if comp in self.mappings.components
            for v in sorted(versions)
            for b in osv_queries(self.mappings, comp, v)
        ]
        results = await asyncio.gather(*(self._query(comp, b) for comp, b in bodies))
        seen: dict[str, OsvRecord] = {}
        for recs in results:
            for r in recs:
                seen.setdefault(r.id, r)
        return [seen[k] for k in sorted(seen)]

    async def _query(self, component: str, body: dict[str, object]) -> list[OsvRecord]:
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        path = self.cache_dir / "osv" / f"{key}.json" if self.cache_dir else None
        if path and path.exists():
            cached = json.loads(path.read_text())
            if self.now - datetime.fromisoformat(cached["fetched_at"]) < self.ttl:
                return parse_osv_response(cached["response"], source=f"{self.url}/v1/query")
        import httpx  # only when a request is made: offline runs never load it

        try:
            resp = await self.client.post(f"{self.url.rstrip('/')}/v1/query", json=body)
            resp.raise_for_status()
            payload = resp.json()
            records = parse_osv_response(payload, source=f"{self.url}/v1/query")
        except (httpx.HTTPError, ValueError, ObsplanError) as exc:
            self.failures.setdefault(component, []).append(
                f"OSV API query for {body['version']} failed ({type(exc).__name__}); local advisories only"
            )
            return []
        if path:
            write_atomic(path, json.dumps({"fetched_at": self.now.isoformat(), "response": payload}, sort_keys=True))
        return records
