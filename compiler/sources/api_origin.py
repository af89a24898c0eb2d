"""Where the GitHub token may go: the configured API origin only (same scheme, host and port).

A `Link: rel="next"` page, a cached page's `next_url` or a redirect elsewhere never carries the token:
`GitHubSource` refuses a pagination link to another origin (the listing fails, as any unusable answer does), and
`CredentialFence` strips `Authorization` from any request that leaves the origin (a redirect included)."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) with the scheme's default port filled in; None for a URL without a usable origin
    (no host, another scheme, a bad port, credentials in the URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def same_origin(url: str, api_url: str) -> bool:
    """Whether `url` is on the API's origin (a URL with no usable origin never is)."""
    mine = origin_of(url)
    return mine is not None and mine == origin_of(api_url)
