"""`-o` into something that is not a file: as root, `obsplan report LOCK -o /dev/null` renamed its temporary
file over /dev/null and left the machine with a regular file there (every later `> /dev/null` then wrote into
it). A character device or a FIFO given as `-o` is written into, never replaced; `/dev/stdout` is written
through whatever stdout is; a directory, a block device or a socket is refused (exit 2); `plan -o`, whose lock
is read again on the next plan and gets a report beside it, refuses anything but a file. The devices here are
nodes made in a temporary directory (`mknod`, root), never the machine's own."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.fsio import write_output

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "plans" / "production.lock"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def _obsplan(*args: str | Path, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "OBSPLAN_NOW": "2026-11-22", "GITHUB_API_URL": "http://127.0.0.1:9"}
    cmd = [sys.executable, "-m", "obsplan", *map(str, args)]
    return subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, check=False, timeout=60, env=env)


def _null_device(path: Path) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    return path


@needs_root
@pytest.mark.parametrize("command", ["report", "facts"])
def test_a_character_device_is_written_into_never_replaced(tmp_path: Path, command: str) -> None:
    null = _null_device(tmp_path / "null")
    args = [LOCK] if command == "report" else ["--root", tmp_path / "root"]
    done = _obsplan(command, *args, "-o", null)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.major(os.lstat(null).st_rdev) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "root") == ["null"]  # no temporary file left


@needs_root
def test_plan_refuses_a_device_as_its_lock_before_compiling(tmp_path: Path) -> None:
    null = _null_device(tmp_path / "null")
    done = _obsplan("plan", "--config-dir", ROOT / "examples", "--env", "staging", "--offline", "-o", null)
    assert done.returncode == 2, done.stderr
    assert f"{null}: -o: the lock plan writes must be a file".encode() in done.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_a_fifo_is_written_into_and_one_nobody_reads_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused = _obsplan("report", LOCK, "-o", fifo)
    assert refused.returncode == 2 and b"-o: cannot write to it: no process reads from it" in refused.stderr
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    try:
        written = _obsplan("report", LOCK, "-o", fifo)
    finally:
        if reader.is_alive() and not got:  # release the reader if the write never came
            with open(fifo, "wb"):
                pass
        reader.join(10)
    assert written.returncode == 0, written.stderr
    assert got and got[0].startswith(b"# Upgrade plan: production") and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dev_stdout_is_whatever_stdout_is(tmp_path: Path) -> None:
    before = os.lstat("/dev/stdout")
    piped = _obsplan("report", LOCK, "-o", "/dev/stdout")
    assert piped.returncode == 0 and piped.stdout.startswith(b"# Upgrade plan: production"), piped.stderr
    out = tmp_path / "out.md"
    with out.open("wb") as fh:  # stdout redirected to a file: written through the link, the link untouched
        redirected = _obsplan("report", LOCK, "-o", "/dev/stdout", stdout=fh.fileno())
    assert redirected.returncode == 0 and out.read_bytes() == piped.stdout
    after = os.lstat("/dev/stdout")
    assert stat.S_ISLNK(after.st_mode) and (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)


@needs_root
def test_a_block_device_and_a_socket_are_refused(tmp_path: Path) -> None:
    block = tmp_path / "disk"
    os.mknod(block, 0o600 | stat.S_IFBLK, os.makedev(7, 250))  # a loop device node; never opened
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        for target in (block, tmp_path / "sock"):
            with pytest.raises(ObsplanError) as refused:
                write_output(target, "lock")
            assert refused.value.key == "-o" and "a block device or a socket" in refused.value.message
    finally:
        sock.close()
    assert stat.S_ISBLK(os.lstat(block).st_mode)


def test_a_regular_file_and_a_link_keep_the_atomic_write(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    write_output(target, "one")
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("keep")
    link = tmp_path / "link.md"
    link.symlink_to(elsewhere)
    write_output(link, "two")  # a link outside /dev and /proc is replaced, never followed (as plan -o does)
    assert target.read_text() == "one" and link.read_text() == "two" and not link.is_symlink()
    assert elsewhere.read_text() == "keep"
