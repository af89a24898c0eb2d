"""The compiler's one HTTP client: none at all offline (httpx is not even imported), else an httpx client whose
transport stops asking the GitHub API for the rest of the run once it has said "rate limited" and sends the token
to the API's origin only (`credential_fence.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 10.0


@asynccontextmanager
async def client_for(api_url: str, offline: bool) -> AsyncIterator[httpx.AsyncClient | None]:
    if offline:
        yield None
        return
    import httpx
    from obsplan.compiler.sources.credential_fence import CredentialFence
    from obsplan.compiler.sources.ratelimit import RateLimitBreaker

    fenced = CredentialFence(httpx.AsyncHTTPTransport(), api_url)
    breaker = RateLimitBreaker(fenced, (f"{api_url.rstrip('/')}/repos/",))
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True, transport=breaker) as client:
        yield client
