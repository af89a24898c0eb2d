"""Stop asking an API that said "rate limited" for the rest of the run (seed 000: automatic switch to offline).

`RateLimitBreaker` wraps the HTTP transport. The first 429, or 403 with `X-RateLimit-Remaining: 0`, from a URL
under one of its prefixes opens the breaker; from then on every request under those prefixes is answered
locally with a synthetic 429 (header `X-Obsplan-Breaker: open`) and never sent, so each caller takes its
ordinary rate-limit fallback (stale cache, embedded snapshot) without another request. Requests already in
flight when the breaker opens (at most the compiler's concurrency) still complete.
"""

from __future__ import annotations

import httpx


def is_rate_limited(resp: httpx.Response) -> bool:
    return resp.status_code == 429 or (resp.status_code == 403 and resp.headers.get("x-ratelimit-remaining") == "0")


class RateLimitBreaker(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, prefixes: tuple[str, ...]):
        self.inner = inner
        self.prefixes = prefixes
        self.open = False

    def _guarded(self, request: httpx.Request) -> bool:
        return str(request.url).startswith(self.prefixes)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.open and self._guarded(request):
            headers = {"x-ratelimit-remaining": "0", "x-obsplan-breaker": "open"}
            return httpx.Response(429, headers=headers, request=request)
        resp = await self.inner.handle_async_request(request)
        if self._guarded(request) and is_rate_limited(resp):
            self.open = True
        return resp

    async def aclose(self) -> None:
        await self.inner.aclose()
