"""A scripted local HTTP server for cache tests: per path a status, body and ETag (GET and POST), a matching
If-None-Match answered 304, every request recorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: str = "hello"
    etag: str | None = '"v1"'


@dataclass
class Origin:
    """Per path a status, body and ETag; a matching If-None-Match gets a 304; every request is recorded."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def count(self, path: str | None = None) -> int:
        return sum(1 for _, p, _ in self.requests if path is None or p == path)


def _handler(origin: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._answer()

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._answer()

        def _answer(self) -> None:
            origin.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = origin.routes.get(self.path, Route(404, "", None))
            status = route.status
            if route.etag and self.headers.get("If-None-Match") == route.etag and status == 200:
                status = 304
            data = route.body.encode() if status != 304 else b""
            self.send_response(status)
            if route.etag:
                self.send_header("ETag", route.etag)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a plan sends its queries at once; the default backlog (5) would refuse some
    daemon_threads = True


@contextmanager
def serve_origin() -> Iterator[Origin]:
    """An `Origin` on a free port of 127.0.0.1, stopped on exit."""
    o = Origin()
    server = _Server(("127.0.0.1", 0), _handler(o))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    o.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield o
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
