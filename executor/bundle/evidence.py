"""The upstream checksum files a bundle keeps as evidence, checked against the lock (and, for artifacts the lock
has no sha256 for, against the downloaded bytes)."""

from __future__ import annotations

from obsplan.executor.bundle.wanted import Wanted

import obsplan.kernel.checksum_file as checksum_file


def checksum_problems(text: str, wanted: dict[str, Wanted], c: Wanted, actual: dict[str, str]) -> list[str]:
    """What the checksum file `c` says against the lock (and, for unverified artifacts, against the bytes)."""
    problems = []
    for apath in c.vouches_for:
        a = wanted[apath].artifact
        assert a is not None
        listed = checksum_file.lookup(text, a.filename)
        expected = a.sha256 or actual.get(apath)
        if listed is None and a.sha256 is not None:  # (for an unverified artifact it is simply no evidence)
            problems.append(f"{c.url} has no line for {a.filename}")
        elif listed is not None and expected is not None and listed != expected:
            source = "the lock" if a.sha256 else "the downloaded (unverified) file"
            problems.append(f"{c.url} says {listed} for {a.filename}, {source} says {expected}")
    return problems
