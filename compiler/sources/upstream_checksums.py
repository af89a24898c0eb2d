"""Upstream checksums: promu `sha256sums.txt`, GoReleaser `<project>_<ver>_checksums.txt`, Loki `SHA256SUMS`
(all `<hex>  <name>` lines) and Grafana's `<url>.sha256` side-cars (bare hex).

Checksum files of a published release never change, so fetched ones are immutable entries of the one HTTP cache
(kept for good; a 404 is kept for the TTL only). A checksum that cannot be fetched is reported as missing; it is
never invented.
"""

from __future__ import annotations

from obsplan.compiler.sources.http_cache import HttpCache

import obsplan.kernel.checksum_file as checksum_file

# How a component's warning about an artifact without an upstream sha256 starts (offline plans always have it).
MISSING_CHECKSUM = "no upstream checksum for"


# Read by the one parser the executor's bundles use too (obsplan/kernel/checksum_file.py).
parse_checksum_file = checksum_file.parse
parse_sidecar = checksum_file.sidecar


class ChecksumFetcher:
    def __init__(self, http: HttpCache):
        self.http = http

    async def text(self, url: str) -> tuple[str | None, str]:
        """The file's text (or None) and, when None, why it is missing."""
        answer = await self.http.get(url, immutable=True)
        if answer.ok and answer.entry is not None:
            return answer.entry.body, ""
        if answer.failure is not None and answer.failure.offline:
            return None, "offline and not in the checksum cache"
        why = answer.failure.describe() if answer.failure else f"HTTP {answer.entry.status if answer.entry else '?'}"
        return None, f"could not fetch {url} ({why})"
