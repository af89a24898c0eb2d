"""Benchmark `obsplan bundle` when every artifact is already present, against just hashing the same files.

A re-run must re-hash every file (presence by name proves nothing), so the floor is one sha256 pass over the
bundle; the difference is the tool's own overhead (loading and checking the lock, planning the files, the
manifest, temp-file bookkeeping). The lock names real release tarballs (Debian node_exporter 1.5.0/1.9.0 and
prometheus 2.42.0/2.53.3 repacked in the upstream layout) for this host's platform plus small stand-ins for a
second platform, served from a local HTTP server.

Prints, from one run: the cold build (downloads), the warm re-run in-process and via the CLI, one sha256 pass
over the same files, and the ratios.

Usage: python bench/bench_bundle.py [--repeat N]   (needs apt-get/dpkg-deb or a filled ~/.cache/obsplan-tests/debs)
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from obsplan.executor.bundle.build import build_bundle  # noqa: E402
from obsplan.executor.bundle.verify import verify_bundle  # noqa: E402

from tests.bundle.conftest import Hop, Upstream, make_lock  # noqa: E402
from tests.executor import fetch_debs  # noqa: E402
from tests.executor.conftest import node_runtime, prometheus_runtime  # noqa: E402
from tests.static_server import start_static_server  # noqa: E402


def _sha256_all(directory: Path) -> tuple[int, int]:
    """sha256 of every file under `directory` (1 MiB reads, as the bundle code does); returns (files, bytes)."""
    n = size = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        n, size = n + 1, size + path.stat().st_size
    return n, size


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1, help="warm runs and hash passes (median reported)")
    args = parser.parse_args()
    releases = fetch_debs.build_releases()
    work = Path(tempfile.mkdtemp(prefix="obbb"))
    www = work / "www"
    www.mkdir()
    static = start_static_server(www)
    try:
        up = Upstream(static)
        ne = [
            Hop(None, "1.5.0", releases[("node_exporter", "1.5.0")]),
            Hop("1.5.0", "1.9.0", releases[("node_exporter", "1.9.0")]),
        ]
        pr = [
            Hop(None, "2.42.0", releases[("prometheus", "2.42.0")]),
            Hop("2.42.0", "2.53.3", releases[("prometheus", "2.53.3")]),
        ]
        lock = make_lock(
            work / "prod.lock",
            up,
            {
                "node_exporter": (node_runtime(9100), "exporters", ne),
                "prometheus": (prometheus_runtime(9090), "core", pr),
            },
        )
        out = work / "bundle"

        t0 = time.perf_counter()
        cold = build_bundle(lock, out)
        cold_s = time.perf_counter() - t0
        assert cold.count("downloaded") == len([f for f in cold.files if f.kind in ("artifact", "checksum_file")])

        warm, hashing, cli = [], [], []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            result = build_bundle(lock, out)
            warm.append(time.perf_counter() - t0)
            assert result.count("downloaded") == 0 and result.count("replaced") == 0
            t0 = time.perf_counter()
            files, size = _sha256_all(out)
            hashing.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "obsplan", "bundle", str(lock), "-o", str(out), "--json"],
                check=True,
                capture_output=True,
            )
            cli.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        verified = verify_bundle(out)
        verify_s = time.perf_counter() - t0
        assert verified.ok, verified.problems

        warm_m, hash_m, cli_m = statistics.median(warm), statistics.median(hashing), statistics.median(cli)
        print(f"bundle_files                          {files}  ({size / 1e6:.1f} MB, 2 platforms)")
        print(f"cold_bundle_seconds                   {cold_s:.4f}  (downloads from a local HTTP server)")
        print(f"warm_bundle_inprocess_seconds         {warm_m:.4f}  (all present: re-hash, manifest; n={len(warm)})")
        print(f"warm_bundle_cli_seconds               {cli_m:.4f}  (includes interpreter start)")
        print(f"sha256_same_files_seconds             {hash_m:.4f}  ({size / 1e6 / hash_m:.0f} MB/s)")
        print(f"verify_bundle_seconds                 {verify_s:.4f}")
        print(f"ratio_warm_bundle_to_sha256           {warm_m / hash_m:.3f}")
        print(f"ratio_warm_cli_to_sha256              {cli_m / hash_m:.3f}")
    finally:
        static.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
