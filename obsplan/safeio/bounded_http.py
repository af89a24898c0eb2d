"""An HTTP answer read from a server that may be hostile: bounded in time and in bytes.

`fetch` sends one request and reads the whole answer (headers and body) within `deadline` seconds of wall
time, whatever the server does (a byte a second, headers that never end), and keeps at most `limit` bytes of
the *decoded* body: a gzip or deflate body is decompressed here, `limit` bytes at a time at most, so a gzip
bomb costs `limit` bytes, never what it expands to. Too slow: `TimeoutError`; too large: `BodyTooLarge`.
The answer is returned as an `httpx.Response` whose content is the decoded body.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

_DROPPED = ("content-encoding", "content-length", "transfer-encoding")


class BodyTooLarge(ValueError):
    """The decoded body is larger than the limit (or its encoding is not one obsplan decodes)."""


class _Decoder:
    """Decodes `identity`, `gzip` or `deflate`, refusing to hold more than `limit` decoded bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self.zlib: Any = None
        elif encoding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.zlib = zlib.decompressobj()
        else:
            raise BodyTooLarge(f"the answer is encoded as {encoding[:40]!r}, which obsplan does not decode")
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        if self.zlib is None:
            self._keep(chunk)
            return
        try:
            data = self.zlib.decompress(chunk, self.limit - self.size + 1)
            self._keep(data)
            while self.zlib.unconsumed_tail:
                self._keep(self.zlib.decompress(self.zlib.unconsumed_tail, self.limit - self.size + 1))
        except zlib.error as exc:
            raise BodyTooLarge(f"the answer's compressed body is corrupt ({exc})") from None

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise BodyTooLarge(f"the answer is larger than {self.limit} bytes")
        self.parts.append(data)

    def body(self) -> bytes:
        return b"".join(self.parts)


async def fetch(
    client: httpx.AsyncClient, method: str, url: str, *, limit: int, deadline: float, **kwargs: Any
) -> httpx.Response:
    """The answer to one request, read whole within `deadline` seconds and `limit` decoded bytes."""
    import httpx

    async def read() -> httpx.Response:
        async with client.stream(method, url, **kwargs) as resp:
            try:
                body = resp.content  # a response a transport made locally (a rate-limit breaker) is read already
            except httpx.ResponseNotRead:
                decoder = _Decoder(resp.headers.get("content-encoding", ""), limit)
                async for chunk in resp.aiter_raw():
                    decoder.feed(chunk)
                body = decoder.body()
            if len(body) > limit:
                raise BodyTooLarge(f"the answer is larger than {limit} bytes")
            headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in _DROPPED]
            return httpx.Response(resp.status_code, headers=headers, content=body, request=resp.request)

    try:
        return await asyncio.wait_for(read(), deadline)
    except TimeoutError:
        raise TimeoutError(f"no complete answer within {deadline:g} s") from None
