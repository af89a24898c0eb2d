"""Upstream CHANGELOG files from the GitHub contents API (raw media type), cached with ETags like release data.

`CHANGELOG.release-3.5-LTS.md` in policies/breaking-changes.yaml names `CHANGELOG.md` on branch
`release-3.5` (Prometheus keeps LTS patch notes only there).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan.fsio import write_atomic

if TYPE_CHECKING:
    import httpx

_BRANCH_FILE = re.compile(r"^CHANGELOG\.(release-[0-9.]+)-LTS\.md$")


class ChangelogFetcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_url: str,
        token: str | None,
        cache_dir: Path | None,
        ttl: timedelta,
        now: datetime,
    ):
        self.client, self.api, self.token = client, api_url.rstrip("/"), token
        self.dir = cache_dir / "changelogs" if cache_dir else None
        self.ttl, self.now = ttl, now

    async def fetch(self, repo: str, name: str) -> str | None:
        """The file's text, or None when it cannot be had (the caller falls back to the snapshot)."""
        m = _BRANCH_FILE.match(name)
        url = f"{self.api}/repos/{repo}/contents/CHANGELOG.md" + (f"?ref={m.group(1)}" if m else "")
        if m is None:
            url = f"{self.api}/repos/{repo}/contents/{name}"
        path = self.dir / hashlib.sha256(url.encode()).hexdigest() if self.dir else None
        cached = json.loads(path.read_text()) if path and path.exists() else None
        if cached and self.now - datetime.fromisoformat(cached["fetched_at"]) < self.ttl:
            return None if cached["text"] is None else str(cached["text"])  # None: upstream has no such file
        headers = {"Accept": "application/vnd.github.raw+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if cached and cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        import httpx  # only when a request is made: offline runs never load it

        try:
            resp = await self.client.get(url, headers=headers)
        except httpx.HTTPError:
            return cached["text"] if cached else None
        text: str | None
        if resp.status_code == 304 and cached:
            text = cached["text"]
        elif resp.status_code == 200:
            text = resp.text
        elif resp.status_code == 404:
            text = None  # remembered for the TTL like a found file: a warm re-plan asks again only after it
        else:
            return str(cached["text"]) if cached and cached["text"] is not None else None
        if path:
            write_atomic(
                path,
                json.dumps(
                    {"fetched_at": self.now.isoformat(), "etag": resp.headers.get("etag"), "text": text}, sort_keys=True
                ),
            )
        return text
