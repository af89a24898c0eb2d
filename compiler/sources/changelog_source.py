"""Upstream CHANGELOG files from the GitHub contents API (raw media type), through the one HTTP cache.

A file upstream does not have (404) is remembered for the TTL like a found one, so a warm re-plan does not ask
again. `CHANGELOG.release-3.5-LTS.md` in policies/breaking-changes.yaml names `CHANGELOG.md` on branch
`release-3.5` (Prometheus keeps LTS patch notes only there).
"""

from __future__ import annotations

import re

from obsplan.compiler.sources.http_cache import HttpCache

_BRANCH_FILE = re.compile(r"^CHANGELOG\.(release-[0-9.]+)-LTS\.md$")


class ChangelogFetcher:
    def __init__(self, http: HttpCache, *, api_url: str, token: str | None):
        self.http, self.api, self.token = http, api_url.rstrip("/"), token

    def url(self, repo: str, name: str) -> str:
        m = _BRANCH_FILE.match(name)
        if m is None:
            return f"{self.api}/repos/{repo}/contents/{name}"
        return f"{self.api}/repos/{repo}/contents/CHANGELOG.md?ref={m.group(1)}"

    async def fetch(self, repo: str, name: str) -> str | None:
        """The file's text, or None when it cannot be had (the caller falls back to the snapshot)."""
        headers = {"Accept": "application/vnd.github.raw+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        answer = await self.http.get(self.url(repo, name), headers=headers)
        return answer.entry.body if answer.ok and answer.entry is not None else None
