"""Grafana, Loki and Promtail have no binaries in this environment: their shipped service definitions are
applied with a fake binary (a small Python program) that listens where the rendered argv tells it and
serves the component's health and version endpoints, under the suite's real supervisord."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import obsplan.executor.apply.engine as engine
import pytest
from obsplan.executor.reporters import RecordingReporter

from . import fetch_debs
from .conftest import Server, build_lock, catalog_runtime, free_port, hop

pytestmark = pytest.mark.e2e

FAKE = """#!{python}
# A stand-in for {name} {version}: listens on the port its argv names, serves health, version and argv.
import http.server, json, sys
NAME, VERSION, HEALTH = {name!r}, {version!r}, {health!r}
args = sys.argv[1:]
if args and args[0] in ("--version", "-version"):
    print(f"{{NAME}}, version {{VERSION}} (branch: HEAD, revision: 0000000)")
    sys.exit(0)
if args and (args[0] in ("check", "check-config") or "-verify-config" in args):  # as its own checker: accepts
    sys.exit(0)
port = None
for a in args:
    for prefix in ("-server.http-listen-port=", "cfg:server.http_port=", "--web.listen-address="):
        if a.startswith(prefix):
            port = int(a[len(prefix):].rsplit(":", 1)[-1])
if port is None:
    sys.exit("no listen port in argv: " + " ".join(args))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        routes = {{HEALTH: json.dumps({{"database": "ok", "version": VERSION}}) if NAME == "grafana" else "ready",
                  "/metrics": f'{{NAME}}_build_info{{{{version="{{VERSION}}"}}}} 1\\n', "/argv": json.dumps(args)}}
        body = routes.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write((body or "").encode())
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("", port), H).serve_forever()
"""

# where the catalog's globs find the binary: grafana `*/bin/grafana`, loki/promtail `loki-*-*` at the root
BINARY = {"grafana": "bin/grafana", "loki": "loki-linux-amd64", "promtail": "promtail-linux-amd64"}


def _fake_release(tmp_path: Path, name: str, version: str, health: str) -> Path:
    script = FAKE.format(python=sys.executable, name=name, version=version, health=health).encode()
    out = tmp_path / "fake" / f"{name}-{version}"
    return fetch_debs.make_tarball(out, name, version, {BINARY[name]: script}, flat=name != "grafana")


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [("grafana", "12.4.2", "13.2.2"), ("loki", "3.6.5", "3.7.6"), ("promtail", "3.6.5", "3.6.11")],
)
def test_definition_runs_and_upgrades_with_a_fake_binary(
    server: Server, root: Path, tmp_path: Path, name: str, old: str, new: str
) -> None:
    port = free_port()
    runtime = catalog_runtime(name, port)
    hops = []
    for prev, version in ((None, old), (old, new)):
        hops.append(hop(server, _fake_release(tmp_path, name, version, runtime.health_path), prev, version))
    lock = build_lock(tmp_path / "lock.json", {name: (runtime, "logs", hops)})
    report = engine.apply(lock, engine.ApplyOptions(root=root, mode="fast", health_timeout=30.0), RecordingReporter())
    assert report.exit_code == 0, report.to_dict()
    assert [r.status for r in report.results] == ["ok", "ok"]
    with httpx.Client(trust_env=False) as client:
        assert client.get(f"http://127.0.0.1:{port}{runtime.health_path}").status_code == 200
        assert f'version="{new}"' in client.get(f"http://127.0.0.1:{port}/metrics").text
        argv = json.loads(client.get(f"http://127.0.0.1:{port}/argv").text)
    if name == "grafana":
        assert json.loads(httpx.get(f"http://127.0.0.1:{port}/api/health", trust_env=False).text)["version"] == new
        assert argv[:2] == ["server", f"--homepath={root}/opt/obsplan/grafana/current"]
        assert f"cfg:paths.data={root}/var/lib/grafana" in argv
    else:
        assert argv[:2] == ["-server.http-listen-address=", f"-server.http-listen-port={port}"]
        assert argv[2] == f"-config.file={root}/etc/{name}/config.yml"
