"""What sits in a bundle directory besides its artifacts: the fixed names, temp-file names, and the walk over it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "obsplan.lock"
MANIFEST_NAME = "manifest.json"
TMP_MARK = ".tmp-"  # every temp file of a build: `.<name>.tmp-<pid>-<random>`


def tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{os.urandom(4).hex()}")


def walk_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every entry below `directory` that is not a directory, links included."""
    for dirpath, dirnames, filenames in os.walk(directory):
        base = Path(dirpath)
        for name in sorted(dirnames):
            if (base / name).is_symlink():
                yield (base / name).relative_to(directory).as_posix(), base / name
        for name in sorted(filenames):
            yield (base / name).relative_to(directory).as_posix(), base / name


def is_bundle_dir(directory: Path) -> bool:
    return (directory / LOCK_NAME).exists() or (directory / MANIFEST_NAME).exists()
