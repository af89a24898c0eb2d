"""What a bundle build reports: each file with what was done to it, and the warnings (`--json` prints it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BundleFile:
    path: str
    kind: str
    status: str  # downloaded | present | replaced (was corrupt) | written | removed
    size: int = 0
    sha256: str | None = None
    verified: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BundleResult:
    output: Path
    directory: Path
    platforms: list[str]
    lock_sha256: str
    files: list[BundleFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many downloadable files (artifacts, checksum files) have `status`."""
        return sum(1 for f in self.files if f.status == status and f.kind in ("artifact", "checksum_file"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "directory": str(self.directory),
            "platforms": self.platforms,
            "lock_sha256": self.lock_sha256,
            "files": [f.to_dict() for f in self.files],
            "downloaded": self.count("downloaded") + self.count("replaced"),
            "present": self.count("present"),
            "warnings": self.warnings,
            "unverified": [f.path for f in self.files if not f.verified],
        }
