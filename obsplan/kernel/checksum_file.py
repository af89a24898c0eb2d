"""Upstream checksum files, read the same way by the compiler (to lock a sha256) and the executor (to check a
bundle against the lock).

Two shapes exist: list files, one `<hex>  <name>` line per file (promu `sha256sums.txt`, GoReleaser
`<project>_<ver>_checksums.txt`, Loki `SHA256SUMS`; `<hex> *<name>` marks binary mode, a `./` prefix is
dropped), and side-cars holding one file's digest (Grafana's `<url>.sha256`). Digests are 64 hex digits in
either case and are returned in lowercase; any other line is ignored.
"""

from __future__ import annotations

import re

_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def parse(text: str) -> dict[str, str]:
    """`<hex>  <name>` or `<hex> *<name>` lines → {name: hex}; a name listed twice keeps its last digest."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and _HEX.match(parts[0]):
            out[parts[1].lstrip("*").strip().removeprefix("./")] = parts[0].lower()
    return out


def sidecar(text: str) -> str | None:
    """A side-car's digest: its first word when that is 64 hex digits (a file name after it is not checked)."""
    token = text.strip().split()[0] if text.strip() else ""
    return token.lower() if _HEX.match(token) else None


def lookup(text: str, filename: str) -> str | None:
    """The digest a checksum file gives for `filename`: a side-car holding nothing but a digest gives it for any
    name; a list gives the line for `filename`, else the first line whose last path segment is `filename`."""
    if len(text.split()) == 1:
        return sidecar(text)
    found = parse(text)
    return found.get(filename) or next((v for k, v in found.items() if k.rsplit("/", 1)[-1] == filename), None)
