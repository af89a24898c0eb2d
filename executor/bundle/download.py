"""Downloads for a bundle build: one HTTP client made only when something must be fetched, small files read
whole, artifacts streamed into a temp file beside their place in the bundle."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import obsplan.executor.artifacts.store as art
from obsplan.executor.bundle.files import tmp_name

from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.lockfile import Artifact

SMALL_FILE_BYTES = 1024 * 1024  # a checksum file: a few KiB


class LazyClient:
    """The injected client, or one made at the first download (a re-run with everything present opens none)."""

    def __init__(self, client: httpx.Client | None) -> None:
        self.client, self.own = client, client is None

    def get(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(timeout=60.0)
        return self.client

    def close(self) -> None:
        if self.own and self.client is not None:
            self.client.close()


def get_bytes(client: httpx.Client, url: str) -> bytes:
    """A small file (a checksum file) in full; ObsplanError (exit 1) when it cannot be had."""
    parts, size, until = [], 0, time.monotonic() + 60
    try:
        with client.stream("GET", url, follow_redirects=True, timeout=30) as resp:
            if resp.status_code != 200:
                raise ObsplanError(f"could not fetch {url}: HTTP {resp.status_code}", exit_code=EXIT_FAILED)
            for chunk in resp.iter_bytes():  # decoded a chunk at a time: a bomb is cut at the cap
                size += len(chunk)
                if size > SMALL_FILE_BYTES or time.monotonic() > until:
                    raise ObsplanError(
                        f"could not fetch {url}: more than {SMALL_FILE_BYTES} bytes or 60 s", exit_code=EXIT_FAILED
                    )
                parts.append(chunk)
    except httpx.HTTPError as exc:
        raise ObsplanError(f"could not fetch {url}: {exc}", exit_code=EXIT_FAILED) from None
    return b"".join(parts)


def download(source: art.ArtifactSource, artifact: Artifact, dest: Path) -> tuple[Path, str]:
    """Fetch into a temp file next to `dest` (renamed by the caller once accepted); returns it and its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(dest)
    try:
        cap = art.ByteCap(artifact, art.download_cap(artifact, None))  # the lock's size, else the archive limit
        source.fetch(artifact, tmp, cap.advance, cap.announce)
        return tmp, art.sha256_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
