"""Upstream checksums: promu `sha256sums.txt`, GoReleaser `<project>_<ver>_checksums.txt`, Loki `SHA256SUMS`
(all `<hex>  <name>` lines) and Grafana's `<url>.sha256` side-cars (bare hex).

Checksum files of a published release never change, so fetched ones are cached without expiry. A checksum
that cannot be fetched is reported as missing; it is never invented.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan import checksum_file
from obsplan.fsio import write_atomic

if TYPE_CHECKING:
    import httpx

# How a component's warning about an artifact without an upstream sha256 starts (offline plans always have it).
MISSING_CHECKSUM = "no upstream checksum for"


# Read by the one parser the executor's bundles use too (obsplan/checksum_file.py).
parse_checksum_file = checksum_file.parse
parse_sidecar = checksum_file.sidecar


class ChecksumFetcher:
    def __init__(self, client: httpx.AsyncClient | None, cache_dir: Path | None, *, offline: bool):
        self.client = client
        self.dir = cache_dir / "checksums" if cache_dir else None
        self.offline = offline

    def _path(self, url: str) -> Path | None:
        return self.dir / hashlib.sha256(url.encode()).hexdigest() if self.dir else None

    async def text(self, url: str) -> tuple[str | None, str]:
        """The file's text (or None) and, when None, why it is missing."""
        path = self._path(url)
        if path and path.exists():
            return path.read_text(), ""
        if self.offline or self.client is None:
            return None, "offline and not in the checksum cache"
        import httpx  # only when a request is made: offline runs never load it

        try:
            resp = await self.client.get(url, follow_redirects=True)
        except httpx.HTTPError as exc:
            return None, f"could not fetch {url} ({type(exc).__name__})"
        if resp.status_code != 200:
            return None, f"could not fetch {url} (HTTP {resp.status_code})"
        text = resp.text
        if path:
            write_atomic(path, text)
        return text, ""
