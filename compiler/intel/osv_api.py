"""The OSV query API (`POST {url}/v1/query`), used when online and `osv_api.enabled` is set in the policy.

Answers go through the one HTTP cache (keyed by URL and the query body's sha256; same directory and TTL as
release data); any failure leaves the plan with the local records only and says so, it never blocks planning.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from obsplan.compiler.intel.advisories import osv_queries
from obsplan.compiler.intel.advisory_versions import AdvisoryMappings
from obsplan.compiler.intel.osv_records import OsvRecord, parse_osv_response
from obsplan.compiler.sources.http_cache import HttpCache

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version


@dataclass
class OsvClient:
    http: HttpCache
    url: str
    mappings: AdvisoryMappings
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
        endpoint = f"{self.url.rstrip('/')}/v1/query"
        answer = await self.http.post_json(endpoint, body)
        why = answer.failure.describe() if answer.failure else f"HTTP {answer.entry.status}" if answer.entry else ""
        if answer.ok and answer.entry is not None:
            try:
                return parse_osv_response(answer.entry.json_body(), source=endpoint)
            except (ValueError, ObsplanError) as exc:
                why = type(exc).__name__
        self.failures.setdefault(component, []).append(
            f"OSV API query for {body['version']} failed ({why}); local advisories only"
        )
        return []
