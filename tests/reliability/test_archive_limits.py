"""Archive and download limits (issue 18): a member name of 10,000 characters is `UnsafeArchive` (exit 1, the
host untouched); a bundle tar is held to an artifact's limits from each member's header, before any byte of
it is written (a 1 TiB member, a sparse member, more members than an artifact may have); a download stops at
the artifact's size in the lock, else at the archive limit, before it is hashed."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from obsplan.lock.lockfile import ArchiveLimits
from tests.reliability.conftest import Record, no_hang
from tests.reliability.hostile import (
    apply,
    cli,
    fault_server,
    host,
    tar_member,
    write_lock,
    write_tar,
    write_zip,
    zip_member,
)

LONG = "d/" + "n" * 10_000
COMPONENT = "tool-2.0.0/" + "c" * 300


@pytest.mark.parametrize("name", [LONG, COMPONENT, "a/" * 2100 + "f"], ids=["10000-chars", "300-char-part", "deep"])
@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_over_long_member_name_is_unsafe_archive(tmp_path: Path, name: str, fmt: str, outcomes: Record) -> None:
    path = tmp_path / f"tool-2.0.0.{fmt}"
    if fmt == "tar.gz":
        write_tar(path, [tar_member("tool-2.0.0/tool", data=b"#!/bin/sh\n", mode=0o755), tar_member(name, data=b"x")])
    else:
        write_zip(path, [zip_member("tool-2.0.0/tool", b"#!/bin/sh\n", 0o100755), zip_member(name, b"x")])
    with host() as h, no_hang(120):
        before_out, before_in = h.outside(), h.installed_tree()
        out = apply(h, write_lock(tmp_path / "t.lock", path, fmt), "--artifacts", str(tmp_path))
        outcomes(f"archives::long name {fmt}", out.exit_code, out.exit_code == 1)
        assert out.exit_code == 1, out.output
        assert "longer than a path can be" in str(out.failure()["error"])
        h.assert_untouched(before_out, before_in)


def _header_only(path: Path, infos: list[tarfile.TarInfo]) -> Path:
    """A plain tar of member headers whose data is absent (a hostile size costs nothing to write)."""
    with open(path, "wb") as fh:
        for info in infos:
            fh.write(info.tobuf(tarfile.PAX_FORMAT))
    return path


def _bundle_out(tar: Path, dest: Path) -> tuple[int, str]:
    with no_hang(120):
        out = cli("bundle", "--extract", str(tar), "-o", str(dest))
    return out.exit_code, out.output


def test_bundle_with_a_1_tib_member_is_refused_before_extraction(tmp_path: Path, outcomes: Record) -> None:
    big = tarfile.TarInfo("artifacts/big.tar.gz")
    big.size = 1 << 40
    code, output = _bundle_out(_header_only(tmp_path / "b.tar", [big]), tmp_path / "out")
    outcomes("bundle::1 TiB member", code, code == 1)
    assert code == 1 and "at most" in output, output
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar writes the sparse member")
def test_bundle_with_a_sparse_member_is_refused(tmp_path: Path, outcomes: Record) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as fh:  # 1 TiB on paper, nothing on disk
        fh.truncate(1 << 40)
    tar = tmp_path / "b.tar"
    made = subprocess.run(["tar", "-S", "-cf", str(tar), "-C", str(src), "sparse"], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"tar cannot write a sparse member here: {made.stderr[:200]!r}")
    code, output = _bundle_out(tar, tmp_path / "out")
    outcomes("bundle::sparse member", code, code == 1)
    assert code == 1 and ("sparse file" in output or "at most" in output), output
    assert not (tmp_path / "out").exists()


def test_bundle_with_too_many_members_stops_at_the_limit(tmp_path: Path, outcomes: Record) -> None:
    limit = ArchiveLimits().max_members
    infos = []
    for i in range(limit + 50):
        info = tarfile.TarInfo(f"artifacts/f{i}")
        info.size = 0
        infos.append(info)
    code, output = _bundle_out(_header_only(tmp_path / "b.tar", infos), tmp_path / "out")
    outcomes("bundle::members over the limit", code, code == 1)
    assert code == 1 and f"more than {limit} members" in output, output
    assert not (tmp_path / "out").exists()


def test_bundle_member_with_over_long_name_is_refused(tmp_path: Path, outcomes: Record) -> None:
    tar = tmp_path / "b.tar"
    with tarfile.open(tar, "w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(LONG)
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    code, output = _bundle_out(tar, tmp_path / "out")
    outcomes("bundle::long name", code, code == 1)
    assert code == 1 and "longer than a path can be" in output, output


def _good(tmp_path: Path) -> Path:
    return write_tar(tmp_path / "tool-2.0.0.tar.gz", [tar_member("tool-2.0.0/tool", data=b"#!/bin/sh\n", mode=0o755)])


@pytest.mark.parametrize("stated", ["size", "limit"])
def test_download_stops_at_the_stated_size_or_the_archive_limit(tmp_path: Path, stated: str, outcomes: Record) -> None:
    """/huge serves 100 MiB: stopped at the lock's size of the artifact (1 MiB), or without one at the
    archive limit (4 MiB); the part file is removed, nothing hashed or installed."""
    good = _good(tmp_path)
    with fault_server({}) as url, host() as h, no_hang(120):
        before_out, before_in = h.outside(), h.installed_tree()
        extra = {"size": 1 << 20} if stated == "size" else {"limits": ArchiveLimits(max_total_bytes=4 << 20)}
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz", url=f"{url}/huge/{good.name}", **extra)  # type: ignore[arg-type]
        out = apply(h, lock)
        outcomes(f"downloads::cap by {stated}", out.exit_code, out.exit_code == 1)
        assert out.exit_code == 1, out.output
        failure = out.failure()
        assert failure["reason"] == "download_too_large", failure
        assert str(1 << 20 if stated == "size" else 4 << 20) in str(failure["error"])
        h.assert_untouched(before_out, before_in)
        assert not list(h.downloads.iterdir()) if h.downloads.is_dir() else True


def test_artifact_of_the_stated_size_is_still_fetched(tmp_path: Path) -> None:
    good = _good(tmp_path)
    with fault_server({good.name: good.read_bytes()}) as url, host() as h:
        lock = write_lock(tmp_path / "t.lock", good, "tar.gz", url=f"{url}/ok/{good.name}", size=good.stat().st_size)
        out = apply(h, lock)
        fetched = [e for e in out.events if e.get("event") == "fetched"]
        assert fetched and "download_too_large" not in out.output, out.output  # (the test tool serves nothing)
