"""The HTTP transport's last word on credentials: `Authorization` leaves only for the configured API origin.

Wraps the real transport, so it sees every request httpx sends, redirects included (httpx itself keeps the header
on an http→https redirect to the same host, which is another origin)."""

from __future__ import annotations

import httpx
from obsplan.compiler.sources.api_origin import same_origin


class CredentialFence(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, api_url: str):
        self.inner = inner
        self.api_url = api_url

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers and not same_origin(str(request.url), self.api_url):
            del request.headers["authorization"]
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
