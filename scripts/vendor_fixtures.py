#!/usr/bin/env python3
"""Vendor the upstream release histories into tests/fixtures/upstream/.

Copies, from ``../shared/upstream/<owner>__<repo>/`` (relative to the repository root), the files the test
GitHub server (tests/ghserver.py) and other tests need, so that tests never read ../shared at run time:

- ``tags.tsv`` (every repository),
- ``CHANGELOG.md`` (when present),
- ``CHANGELOG.release-3.5-LTS.md`` (prometheus),
- ``CHANGELOG-excerpt.md`` (grafana),
- ``eol/*.md`` into ``tests/fixtures/upstream/eol/``.

Deliberately not vendored: ``CHANGELOG.helm-loki.md`` and ``CHANGELOG.operator.md`` (other products in the Loki repo).

Usage: python scripts/vendor_fixtures.py [--source DIR] [--dest DIR] [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "upstream"
DEFAULT_DEST = REPO_ROOT / "tests" / "fixtures" / "upstream"

# Per-repository files to copy; a missing optional file is skipped, a missing required one is an error.
REQUIRED = ("tags.tsv",)
OPTIONAL = ("CHANGELOG.md", "CHANGELOG.release-3.5-LTS.md", "CHANGELOG-excerpt.md")
EXCLUDED = ("CHANGELOG.helm-loki.md", "CHANGELOG.operator.md")


def plan(source: Path, dest: Path) -> list[tuple[Path, Path]]:
    """Return the (src, dst) pairs to copy."""
    pairs: list[tuple[Path, Path]] = []
    for repo_dir in sorted(p for p in source.iterdir() if p.is_dir() and "__" in p.name):
        for name in REQUIRED:
            src = repo_dir / name
            if not src.is_file():
                raise FileNotFoundError(f"required file missing: {src}")
            pairs.append((src, dest / repo_dir.name / name))
        for name in OPTIONAL:
            src = repo_dir / name
            if src.is_file() and name not in EXCLUDED:
                pairs.append((src, dest / repo_dir.name / name))
    eol = source / "eol"
    if eol.is_dir():
        for src in sorted(eol.glob("*.md")):
            pairs.append((src, dest / "eol" / src.name))
    return pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    ap.add_argument("--check", action="store_true", help="only report files that differ; exit 1 if any")
    args = ap.parse_args(argv)

    if not args.source.is_dir():
        print(f"source directory not found: {args.source}", file=sys.stderr)
        return 2
    pairs = plan(args.source, args.dest)
    stale = [(s, d) for s, d in pairs if not d.is_file() or not filecmp.cmp(s, d, shallow=False)]
    if args.check:
        for _, d in stale:
            print(f"stale: {d.relative_to(args.dest)}")
        return 1 if stale else 0
    for src, dst in stale:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        print(f"copied {dst.relative_to(args.dest)}")
    print(f"{len(pairs)} files vendored into {args.dest} ({len(stale)} updated)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
