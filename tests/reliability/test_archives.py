"""Extraction cannot escape the version directory, and cannot fill the disk: the hostile corpus, through
`obsplan apply`, on a host that already runs the previous version (which must stay installed and linked)."""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import obsplan.executor.artifacts.store as art
import pytest
from obsplan.executor.artifacts.safe_extract import ArchiveLimitsExceeded, UnsafeArchive

from obsplan.lock.lockfile import ArchiveLimits
from tests.reliability.hostile import (
    NEW,
    apply,
    host,
    tar_chain,
    tar_member,
    write_lock,
    write_tar,
    write_zip,
    zeros_tar,
    zip_chain,
    zip_link,
    zip_member,
)

GOOD_TOP = [tar_member("tool-2.0.0/", tarfile.DIRTYPE)]
T, Z = "tar.gz", "zip"


def _refused(tmp_path: Path, archive: Path, fmt: str, reason: str, limits: ArchiveLimits | None = None) -> str:
    """Apply a lock whose artifact is `archive` (with the lock's sha256): exit 1, `reason`, nothing changed."""
    with host() as h:
        lock = write_lock(tmp_path / "t.lock", archive, fmt, limits=limits)
        before_out, before_in = h.outside(), h.installed_tree()
        out = apply(h, lock, "--artifacts", str(archive.parent))
        assert out.exit_code == 1, out.output
        failure = out.failure()
        assert failure["reason"] == reason, failure
        h.assert_untouched(before_out, before_in)
        assert not (h.opt / NEW).exists()
        return str(failure["error"])


@pytest.mark.parametrize("depth", [2, 3, 5, 8])
@pytest.mark.parametrize("fmt", [T, Z])
def test_link_chain_refused_at_any_depth(tmp_path: Path, fmt: str, depth: int) -> None:
    archive = (tar_chain if fmt == T else zip_chain)(tmp_path / f"chain.{fmt}", depth)
    error = _refused(tmp_path, archive, fmt, "UnsafeArchive")
    assert "outside" in error


TAR_CASES = {
    "traversal": [tar_member("../evil", data=b"x")],
    "deep_traversal": [tar_member("a/b/../../../evil", data=b"x")],
    "absolute": [tar_member("/tmp/obsplan-evil", data=b"x")],
    "absolute_link": [tar_member("l", tarfile.SYMTYPE, "/etc")],
    "link_text_outside": [tar_member("a/l", tarfile.SYMTYPE, "../../..")],
    "hardlink_outside": [tar_member("h", tarfile.LNKTYPE, "../../../../etc/passwd")],
    "hardlink_absolute": [tar_member("h", tarfile.LNKTYPE, "/etc/passwd")],
    "hardlink_via_link": [tar_member("l", tarfile.SYMTYPE, "."), tar_member("h", tarfile.LNKTYPE, "l/../x")],
    "char_device": [tar_member("dev", tarfile.CHRTYPE)],
    "block_device": [tar_member("blk", tarfile.BLKTYPE)],
    "fifo": [tar_member("fifo", tarfile.FIFOTYPE)],
    "duplicate_file": [tar_member("tool-2.0.0/tool", data=b"a"), tar_member("tool-2.0.0/tool", data=b"b")],
    "file_over_link": [tar_member("x", tarfile.SYMTYPE, "tool-2.0.0"), tar_member("x", data=b"b")],
    "late_chain": [
        tar_member("x", tarfile.SYMTYPE, "e/.."),
        tar_member("d/", tarfile.DIRTYPE),
        tar_member("d/l", tarfile.SYMTYPE, ".."),
        tar_member("e", tarfile.SYMTYPE, "d/l/d/l"),
    ],
}


@pytest.mark.parametrize("case", sorted(TAR_CASES))
def test_hostile_tar_refused(tmp_path: Path, case: str) -> None:
    members = [*GOOD_TOP, tar_member("tool-2.0.0/tool", data=b"#!/bin/sh\n", mode=0o755), *TAR_CASES[case]]
    if case == "duplicate_file":
        members = [*GOOD_TOP, *TAR_CASES[case]]
    _refused(tmp_path, write_tar(tmp_path / "a.tar.gz", members), T, "UnsafeArchive")


ZIP_CASES = {
    "traversal": [zip_member("../evil")],
    "absolute": [zip_member("/tmp/obsplan-evil")],
    "absolute_link": [zip_link("l", "/etc")],
    "link_text_outside": [zip_link("a/l", "../../..")],
    "fifo": [zip_member("fifo", b"", 0o010644)],
    "char_device": [zip_member("dev", b"", 0o020644)],
    "duplicate": [zip_member("tool-2.0.0/tool", b"a"), zip_member("tool-2.0.0/tool", b"b")],
    "late_chain": [zip_link("x", "e/.."), zip_link("d/l", ".."), zip_link("e", "d/l/d/l")],
}


@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_hostile_zip_refused(tmp_path: Path, case: str) -> None:
    archive = write_zip(tmp_path / "a.zip", ZIP_CASES[case])
    _refused(tmp_path, archive, Z, "UnsafeArchive")


def test_not_an_archive_is_a_clean_failure(tmp_path: Path) -> None:
    """Bytes matching the lock's sha256 that are no tar.gz / a truncated one: exit 1, never a traceback."""
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + os.urandom(2000))
    assert "not a readable" in _refused(tmp_path, junk, T, "UnsafeArchive")
    good = zeros_tar(tmp_path / "cut.tar.gz", 200_000)
    cut = tmp_path / "cut2.tar.gz"
    cut.write_bytes(good.read_bytes()[:100])
    assert "not a readable" in _refused(tmp_path, cut, T, "UnsafeArchive")


SMALL = ArchiveLimits(max_total_bytes=1 << 20, max_members=50, max_ratio=200)


@pytest.mark.parametrize(
    ("name", "build", "limits", "what"),
    [
        ("bytes", lambda p: zeros_tar(p, 3 << 20), SMALL, "uncompressed bytes"),
        ("ratio", lambda p: zeros_tar(p, 8 << 20), ArchiveLimits(max_ratio=200), "expands more than"),
        ("members", lambda p: zeros_tar(p, 100, files=60), SMALL, "more than 50 members"),
    ],
)
def test_tar_bomb_stopped_by_the_lock_limits(
    tmp_path: Path, name: str, build: object, limits: ArchiveLimits, what: str
) -> None:
    archive = build(tmp_path / f"{name}.tar.gz")  # type: ignore[operator]
    assert what in _refused(tmp_path, archive, T, "archive_limits", limits)


def test_zip_bomb_stopped(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "bomb.zip", [zip_member(f"z{i}", bytes(1 << 20)) for i in range(3)])
    assert "uncompressed bytes" in _refused(tmp_path, archive, Z, "archive_limits", SMALL)
    many = write_zip(tmp_path / "many.zip", [zip_member(f"f{i}", b"") for i in range(60)])
    assert "members" in _refused(tmp_path, many, Z, "archive_limits", SMALL)


# ------------------------------------------------------------------------------ what must still be accepted


def test_python_zipfile_permission_bits_without_type_bits_extract(tmp_path: Path) -> None:
    """zipfile.writestr(name) stores 0o600 (no S_IFREG): a regular file, not a special one."""
    archive = tmp_path / "loki-linux-amd64.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("loki-linux-amd64", "#!/bin/sh\n")
        info = zipfile.ZipInfo("promtail-linux-amd64")
        info.external_attr = 0o755 << 16  # permission bits only, executable
        zf.writestr(info, "#!/bin/sh\n")
    assert (zipfile.ZipFile(archive).getinfo("loki-linux-amd64").external_attr >> 16) & 0o170000 == 0
    art.extract_archive(archive, Z, tmp_path / "out", "loki")
    assert (tmp_path / "out" / "loki-linux-amd64").read_text() == "#!/bin/sh\n"
    assert os.access(tmp_path / "out" / "promtail-linux-amd64", os.X_OK)


def test_links_inside_and_hardlinks_to_extracted_files_are_kept(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "ok.tar.gz",
        [
            *GOOD_TOP,
            tar_member("tool-2.0.0/tool", data=b"bin", mode=0o755),
            tar_member("tool-2.0.0/lib/", tarfile.DIRTYPE),
            tar_member("tool-2.0.0/lib/up", tarfile.SYMTYPE, ".."),
            tar_member("tool-2.0.0/alias", tarfile.SYMTYPE, "lib/up/tool"),
            tar_member("tool-2.0.0/hard", tarfile.LNKTYPE, "tool-2.0.0/tool"),
            tar_member("./", tarfile.DIRTYPE),
        ],
    )
    out = tmp_path / "out"
    art.extract_archive(archive, T, out, "tool")
    assert (out / "tool-2.0.0/alias").read_bytes() == b"bin"
    assert os.stat(out / "tool-2.0.0/hard").st_ino == os.stat(out / "tool-2.0.0/tool").st_ino
    assert os.access(out / "tool-2.0.0/tool", os.X_OK)
    zipped = write_zip(tmp_path / "ok.zip", [zip_member("a/b", b"x"), zip_link("a/c", "b"), zip_link("top", "a")])
    art.extract_archive(zipped, Z, tmp_path / "zout", "b")
    assert (tmp_path / "zout" / "top" / "c").read_bytes() == b"x"


def test_limits_are_counted_while_streaming_not_from_headers(tmp_path: Path) -> None:
    """A zip whose central directory understates the sizes is still stopped by the bytes actually written."""
    archive = write_zip(tmp_path / "liar.zip", [zip_member("z", bytes(3 << 20))])
    data = bytearray(archive.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")  # central directory: uncompressed size 10
    archive.write_bytes(bytes(data))
    with pytest.raises((ArchiveLimitsExceeded, UnsafeArchive)):
        art.extract_archive(archive, Z, tmp_path / "out", "z", SMALL)
    assert (
        not list((tmp_path / "out").rglob("*"))
        or sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file()) <= SMALL.max_total_bytes
    )
