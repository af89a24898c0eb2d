"""Build the embedded release snapshot (compiler/sources/snapshot.json) from the upstream histories in ../shared/upstream.

Usage: python scripts/build_snapshot.py [UPSTREAM_DIR]

Tags become releases (pre-releases flagged by their version); asset names follow each component's naming
convention from policies/components.yaml for linux amd64/arm64/armv7, since the histories carry no asset
lists. One fact is applied by hand: Promtail artifacts exist only up to Loki v3.6.11 (shared/upstream/
grafana__loki/NOTES.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from obsplan.compiler.config.catalog import builtin_definitions, resolve_definition
from obsplan.compiler.config.versions_file import ComponentSpec
from obsplan.compiler.intel.breaking_changes import load_breaking_policy, merge_changelogs
from obsplan.compiler.intel.changelog_parse import parse_changelog
from obsplan.compiler.sources.releases import Release, ReleaseData
from obsplan.compiler.sources.snapshot import snapshot_document

from obsplan.kernel.versions import Version, parse_tag

PLATFORMS = ["linux-amd64", "linux-arm64", "linux-armv7"]
PROMTAIL_LAST = Version.parse("3.6.11")
AS_OF = "2026-08-22"  # the newest snapshot date of the upstream histories (SNAPSHOT.txt / NOTES.md)


def main() -> None:
    upstream = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "../shared/upstream")
    builtins = builtin_definitions()
    defs = [resolve_definition(n, ComponentSpec(), builtins, "policies/components.yaml") for n in builtins]
    repos: dict[str, ReleaseData] = {}
    for repo in sorted({d.github_repo for d in defs}):
        tsv = upstream / repo.replace("/", "__") / "tags.tsv"
        releases = []
        for line in tsv.read_text().splitlines():
            cols = line.split("\t")
            tag, date = cols[0], cols[1] if len(cols) > 1 else ""
            if repo == "grafana/grafana":
                tag = "v" + tag
            v = parse_tag(tag)
            assets = None
            on_github = [d for d in defs if d.github_repo == repo and "github.com/{repo}" in d.download_url]
            if v is not None and on_github:
                names: set[str] = set()
                for d in on_github:
                    if d.name == "promtail" and v > PROMTAIL_LAST:
                        continue
                    for p in PLATFORMS:
                        art = d.artifact_for(v, tag, p)
                        if art:
                            names.add(art[1])
                    cs = d.checksum_name(v)
                    if cs:
                        names.add(cs)
                assets = dict.fromkeys(sorted(names), "")
            releases.append(
                Release(tag=tag, published_at=date[:10] or None, prerelease=bool(v and v.is_prerelease), assets=assets)
            )
        repos[repo] = ReleaseData(repo=repo, releases=releases, source="snapshot", as_of=AS_OF)
    changelogs = {}
    policy = load_breaking_policy()
    for d in defs:
        sources = policy.components.get(d.name)
        folder = upstream / d.github_repo.replace("/", "__")
        files = [folder / f for f in (sources.changelogs if sources else [])]
        if d.name == "grafana":
            files = [folder / "CHANGELOG-excerpt.md"]
        parsed = [parse_changelog(f.read_text(), source=f"{d.github_repo} {f.name}") for f in files if f.exists()]
        if parsed:
            merged = merge_changelogs(parsed)
            changelogs[d.name] = {v: [e.model_dump() for e in entries if e.breaking] for v, entries in merged.items()}
    out = Path(__file__).resolve().parents[1] / "compiler" / "sources" / "snapshot.json"
    out.write_text(snapshot_document(AS_OF, repos, "shared/upstream tags.tsv histories and CHANGELOGs", changelogs))
    print(f"wrote {out} ({len(repos)} repositories)")


if __name__ == "__main__":
    main()
