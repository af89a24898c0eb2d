"""Downloads: an overall deadline per artifact, faults of the server, ENOSPC anywhere (download, extraction,
state) as exit 1 `disk_full` with everything partial removed, and stale `.part-<pid>` files of dead processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from obsplan.lock.lockfile import ArchiveLimits
from tests.reliability.hostile import (
    NEW,
    Host,
    apply,
    cli,
    fault_server,
    host,
    tar_member,
    write_lock,
    write_tar,
    zeros_tar,
)

ANY_SHA = "0" * 64


def _good(tmp_path: Path) -> Path:
    return write_tar(tmp_path / "tool-2.0.0.tar.gz", [tar_member("tool-2.0.0/tool", data=b"#!/bin/sh\n", mode=0o755)])


def _fails(h: Host, lock: Path, reason: str | None, *extra: str) -> str:
    before_out, before_in = h.outside(), h.installed_tree()
    out = apply(h, lock, *extra)
    assert out.exit_code == 1, out.output
    failure = out.failure()
    if reason is not None:
        assert failure["reason"] == reason, failure
    h.assert_untouched(before_out, before_in)
    return str(failure["error"])


def _nothing_downloaded(h: Host) -> None:
    assert not list(h.downloads.iterdir()) if h.downloads.is_dir() else True


@pytest.mark.parametrize("kind", ["trickle", "trickle5"])
def test_trickling_server_is_abandoned_at_the_deadline(tmp_path: Path, kind: str) -> None:
    """A byte every 1 s (each read succeeds) or every 5 s (longer than the deadline): given up, nothing kept."""
    good = _good(tmp_path)
    with fault_server({good.name: good.read_bytes()}) as url, host() as h:
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz", url=f"{url}/{kind}/{good.name}", deadline=2)
        assert "abandoned" in _fails(h, lock, "download_deadline")
        _nothing_downloaded(h)


@pytest.mark.parametrize(
    ("kind", "says"), [("truncate", "download of"), ("longer", "sha256 mismatch"), ("500", "HTTP 500")]
)
def test_server_faults_are_clean_failures(tmp_path: Path, kind: str, says: str) -> None:
    good = _good(tmp_path)
    with fault_server({good.name: good.read_bytes() * 50}) as url, host() as h:
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz", url=f"{url}/{kind}/{good.name}", sha=ANY_SHA)
        assert says in _fails(h, lock, None)
        _nothing_downloaded(h)


def test_stale_parts_of_dead_processes_are_removed_at_start(tmp_path: Path) -> None:
    good = _good(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with fault_server({}) as url, host() as h:
        h.downloads.mkdir(parents=True)
        stale = h.downloads / f".{good.name}.part-{dead.pid}"
        alive = h.downloads / f".{good.name}.part-{os.getppid()}"  # a live process: maybe still downloading
        stale.write_bytes(b"partial")
        alive.write_bytes(b"partial")
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz", url=f"{url}/500/{good.name}")
        out = apply(h, lock)
        assert out.exit_code == 1
        assert not stale.exists() and alive.exists()
        assert any(e["event"] == "stale_downloads_removed" for e in out.events)


# ------------------------------------------------------------------------------------------ ENOSPC (tmpfs)

DISK = 80  # MiB: above the 64 MiB pre-flight minimum, below what the cases write


def test_disk_full_while_downloading(tmp_path: Path) -> None:
    good = _good(tmp_path)
    with fault_server({}) as url, host(DISK) as h:
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz", url=f"{url}/huge/{good.name}", sha=ANY_SHA)
        assert "no space left" in _fails(h, lock, "disk_full")
        _nothing_downloaded(h)
        assert _free(h) > 70 << 20  # the partial download is gone


def test_disk_full_while_extracting(tmp_path: Path) -> None:
    big = zeros_tar(tmp_path / "zeros.tar.gz", 100 << 20)
    with host(DISK) as h:
        lock = write_lock(tmp_path / "t.lock", big, "tar.gz", limits=ArchiveLimits(max_ratio=1e6))
        assert "no space left" in _fails(h, lock, "disk_full", "--artifacts", str(tmp_path))
        assert not (h.opt / NEW).exists()
        assert _free(h) > 70 << 20  # the partial tree is gone


def test_bomb_bigger_than_the_disk_is_stopped_by_the_limit_before_the_disk_fills(tmp_path: Path) -> None:
    big = zeros_tar(tmp_path / "zeros.tar.gz", 100 << 20)
    with host(DISK) as h:
        lock = write_lock(
            tmp_path / "t.lock", big, "tar.gz", limits=ArchiveLimits(max_total_bytes=8 << 20, max_ratio=1e6)
        )
        assert "uncompressed bytes" in _fails(h, lock, "archive_limits", "--artifacts", str(tmp_path))


def test_full_disk_before_apply_is_exit_1_not_a_crash(tmp_path: Path) -> None:
    good = _good(tmp_path)
    with host(DISK) as h:
        filler = h.root / "filler"
        with open(filler, "wb", buffering=0) as fh, pytest.raises(OSError):
            while True:
                fh.write(bytes(1 << 20))
                fh.flush()
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz")
        before = h.installed_tree()
        out = apply(h, lock, "--artifacts", str(tmp_path))
        assert out.exit_code == 1, out.output
        assert "disk_full: no space left" in out.output and "Traceback" not in out.output
        assert h.installed_tree() == before


def _free(h: Host) -> int:
    st = os.statvfs(h.root)
    return st.f_bavail * st.f_frsize


def test_bundle_downloads_keep_the_deadline_too(tmp_path: Path) -> None:
    good = _good(tmp_path)
    with fault_server({good.name: good.read_bytes()}) as url:
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz", url=f"{url}/trickle/{good.name}", deadline=2)
        out = cli("bundle", str(lock), "-o", str(tmp_path / "bundle"))
        assert out.exit_code == 1, out.output
        assert "abandoned" in out.output and "Traceback" not in out.output
        assert not [p for p in (tmp_path / "bundle").rglob("*") if p.name.endswith(".tar.gz")]
