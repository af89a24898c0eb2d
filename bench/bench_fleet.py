"""A real rollout's wall time on 12 hosts against 1 host (parallel hosts within a batch should cost about one
host's time). Needs root, iproute2 and openssh-server: the hosts are network namespaces with their own sshd
(tests/fleet/harness.py), upgraded from node_exporter 1.5.0 to 1.9.0 (real Debian binaries) from a bundle.

Usage: sudo python bench/bench_fleet.py [HOSTS]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.executor import fetch_debs  # noqa: E402
from tests.executor.conftest import Server, build_lock, hop, node_runtime  # noqa: E402
from tests.fleet.conftest import NODE_PORT, OBSPLAN, ONE_BATCH, release_args  # noqa: E402
from tests.fleet.harness import start_fleet  # noqa: E402
from tests.static_server import start_static_server  # noqa: E402


def _rollout(lock: Path, bundle: Path, inv: Path, state: Path, limit: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            OBSPLAN,
            "rollout",
            *release_args(lock, inv, bundle),
            *ONE_BATCH,
            "--limit",
            ",".join(limit),
            "--state-dir",
            str(state),
            "--json",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    releases = fetch_debs.build_releases()
    tmp = Path(tempfile.mkdtemp())
    www = tmp / "www"
    www.mkdir()
    static = start_static_server(www)
    fleet = start_fleet(n + 1)
    try:
        server = Server(static.url, www)
        h15 = hop(server, releases[("node_exporter", "1.5.0")], None, "1.5.0")
        h19 = hop(server, releases[("node_exporter", "1.9.0")], "1.5.0", "1.9.0")
        locks = {}
        for name, hops in (("base", [h15]), ("up", [h15, h19])):
            lock = build_lock(tmp / f"{name}.lock", {"node_exporter": (node_runtime(NODE_PORT), "exporters", hops)})
            subprocess.run(
                [OBSPLAN, "bundle", str(lock), "-o", str(lock.with_suffix(".tar"))], check=True, capture_output=True
            )
            locks[name] = (lock, lock.with_suffix(".tar"))
        inv = fleet.inventory(tmp / "inventory.yaml", OBSPLAN, components=["node_exporter"])
        names = [h.name for h in fleet.hosts]
        base = _rollout(*locks["base"], inv, tmp / "s0", names)
        one = _rollout(*locks["up"], inv, tmp / "s1", names[:1])
        many = _rollout(*locks["up"], inv, tmp / "s2", names[1:])
        print(f"install 1.5.0 on {n + 1} hosts (one batch): {base:6.1f} s")
        print(f"upgrade to 1.9.0, 1 host:  {one:6.1f} s")
        print(f"upgrade to 1.9.0, {n} hosts: {many:6.1f} s  (x{many / one:.2f} of one host's time)")
        summary = subprocess.run(
            [OBSPLAN, "rollout", "--status", "--state-dir", str(tmp / "s2")], check=True, capture_output=True, text=True
        ).stdout
        print("\n" + summary)
    finally:
        fleet.close()
        static.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
