"""The embedded release snapshot: dated release lists shipped inside the package, so planning works offline
on a fresh machine. Generated from shared/upstream by scripts/build_snapshot.py, refreshed from the API by
`obsplan snapshot refresh`.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from obsplan.compiler.sources.releases import ReleaseData, SourceUnavailable

SNAPSHOT_FILE = "snapshot.json"


class SnapshotSource:
    def __init__(self, data: dict[str, Any]):
        self.data = data

    @classmethod
    def embedded(cls) -> SnapshotSource:
        return cls(json.loads(resources.files("obsplan.compiler.sources").joinpath(SNAPSHOT_FILE).read_text()))

    @property
    def as_of(self) -> str:
        return str(self.data["as_of"])

    async def fetch(self, repo: str) -> ReleaseData:
        entry = self.data["repos"].get(repo)
        if entry is None:
            raise SourceUnavailable(f"{repo} is not in the embedded snapshot")
        releases = [
            {
                "tag": r["tag"],
                "published_at": r.get("published_at"),
                "prerelease": r.get("prerelease", False),
                "assets": {name: "" for name in r["assets"]} if r.get("assets") is not None else None,
            }
            for r in entry["releases"]
        ]
        return ReleaseData.model_validate(  # one validation call for the whole list (not one per release)
            {
                "repo": repo,
                "releases": releases,
                "source": "snapshot",
                "as_of": entry.get("as_of", self.as_of),
                "detail": f"embedded snapshot of {self.as_of}",
            }
        )

    @property
    def checksums(self) -> dict[str, Any]:
        """component → version → platform → {filename, sha256, checksum_url}: checksums known when it was built."""
        return dict(self.data.get("checksums", {}))

    @property
    def changelogs(self) -> dict[str, Any]:
        """component → version → breaking entries, parsed from upstream CHANGELOGs when the snapshot was built."""
        return dict(self.data.get("changelogs", {}))


def snapshot_document(
    as_of: str,
    repos: dict[str, ReleaseData],
    generated_from: str,
    changelogs: dict[str, Any] | None = None,
    checksums: dict[str, Any] | None = None,
) -> str:
    """Serialize release data (and checksums learned from locks, when given) as a snapshot file (deterministic)."""
    doc: dict[str, Any] = {
        "as_of": as_of,
        "generated_from": generated_from,
        "repos": {},
        "changelogs": changelogs or {},
    }
    if checksums:
        doc["checksums"] = checksums
    for repo, data in sorted(repos.items()):
        doc["repos"][repo] = {
            "as_of": data.as_of or as_of,
            "releases": [
                {
                    "tag": r.tag,
                    "published_at": r.published_at,
                    "prerelease": r.prerelease,
                    "assets": sorted(r.assets) if r.assets is not None else None,
                }
                for r in data.releases
                if not r.draft
            ],
        }
    return json.dumps(doc, sort_keys=True, indent=1) + "\n"
