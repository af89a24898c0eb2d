"""A hostile HTTP server for the API clients (Prometheus gates, the GitHub API): the first path segment names
what it answers, whatever the rest of the path and query.

- any name in `Hostile.bodies`: that JSON body (bytes), 200, `Content-Type: application/json`;
- `drip`: a JSON-looking body a byte a second, forever; `headdrip`: the status line then a header byte a second;
- `bomb`: a gzip body that expands to `BOMB_BYTES` zeros (sent compressed, `Content-Encoding: gzip`);
- `silent`: accepts and answers nothing.
"""

from __future__ import annotations

import gzip
import http.server
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.reliability.hostile import serve

BOMB_BYTES = 512 * 1024 * 1024  # 512 MiB of zeros once decoded


def gzip_bomb(size: int = BOMB_BYTES) -> bytes:
    """`size` zeros, gzip-compressed (about size/1000 bytes), built a MiB at a time."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block, parts = bytes(1 << 20), []
    for _ in range(size >> 20):
        parts.append(comp.compress(block))
    parts.append(comp.flush())
    return b"".join(parts)


_BOMB: list[bytes] = []


class Hostile(http.server.BaseHTTPRequestHandler):
    bodies: dict[str, bytes] = {}
    headers_extra: dict[str, dict[str, str]] = {}
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        name = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        with suppress(BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            if name in self.bodies:
                self._send(self.bodies[name], self.headers_extra.get(name, {}))
            elif name == "bomb":
                self._send(_BOMB[0], {"Content-Encoding": "gzip"})
            elif name == "drip":
                self._drip()
            elif name == "headdrip":
                self._headdrip()
            elif name == "silent":
                time.sleep(3600)

    def _send(self, body: bytes, extra: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for c in (b"[" * 100000)[:3600]:
            self.wfile.write(bytes([c]))
            self.wfile.flush()
            time.sleep(1)

    def _headdrip(self) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(3600):
            self.wfile.write(b"X")
            self.wfile.flush()
            time.sleep(1)


@contextmanager
def hostile_server(bodies: dict[str, bytes], headers: dict[str, dict[str, str]] | None = None) -> Iterator[str]:
    """The server's base URL; stopped at the end (its dripping threads are daemons and end with their sockets)."""
    if not _BOMB:
        _BOMB.append(gzip_bomb())
    yield from serve(type("Handler", (Hostile,), {"bodies": bodies, "headers_extra": headers or {}}))


def gz(data: bytes) -> bytes:
    return gzip.compress(data)
