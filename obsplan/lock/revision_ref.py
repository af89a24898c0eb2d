"""Read a lock named on the command line: a file, or `REV:PATH` as of a git revision (`main:plans/prod.lock`),
read with `git show` from the current directory's repository.

A revision is data, never an option: it may not start with `-`, is at most `MAX_REV` printable characters,
every git call puts it after `--end-of-options`, and it must name a commit (`git rev-parse --verify --quiet
REV^{commit}`) before `git show` reads the file at that commit's id. The blob is read as bytes, size-capped, and
parsed like a lock file (not UTF-8, too large: exit 2)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError
from obsplan.lock.lockfile import Lock, load_lock, parse_lock

MAX_REV = 256  # git's own ref names are far shorter in practice; a longer "revision" is not one
MAX_PATH = 4096
_HINT = "check the revision (git fetch it first in CI) and the path from the repository root"


def read_lock_ref(ref: str) -> Lock:
    """A lock file path, or REV:PATH (PATH relative to the repository root, or `./`-relative to the current
    directory, as `git show` takes it). An existing file always wins over the REV:PATH reading."""
    if "\0" in ref:
        raise ObsplanError("a lock name may not hold a NUL character", file=ref.replace("\0", "\\0")[:80])
    if _is_file(ref) or ":" not in ref:
        return load_lock(Path(ref))
    rev, _, path = ref.partition(":")
    shown = ref if len(ref) <= 80 else ref[:77] + "..."
    _check_part(rev, "revision", MAX_REV, shown)
    _check_part(path, "path", MAX_PATH, shown)
    git = shutil.which("git")
    if git is None:
        raise ObsplanError("git is not installed", file=shown, hint="install git, or pass a lock file")
    commit = _commit_of(git, rev, path, shown)
    return parse_lock(_show(git, commit, rev, path, shown), shown)


def _show(git: str, commit: str, rev: str, path: str, shown: str) -> bytes:
    """The blob at `commit:path`, read at most `jsonload.MAX_BYTES` + 1 bytes (larger: exit 2)."""
    with (
        tempfile.TemporaryFile() as errors,  # a file, not a pipe: git never blocks on it while stdout is read
        subprocess.Popen(
            [git, "show", "--end-of-options", f"{commit}:{path}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        ) as proc,
    ):
        assert proc.stdout is not None
        data = proc.stdout.read(jsonload.MAX_BYTES + 1)
        if len(data) > jsonload.MAX_BYTES:
            proc.kill()
            raise ObsplanError(f"lock is larger than {jsonload.MAX_BYTES} bytes", file=shown, hint=_HINT)
        code = proc.wait()
        errors.seek(0)
        err = errors.read(65536)
    if code != 0:
        why = (err.decode(errors="replace").strip().splitlines() or ["git show failed"])[-1]
        raise ObsplanError(
            f"cannot read {path} at revision {rev}: {why.removeprefix('fatal: ')}", file=shown, hint=_HINT
        )
    return data


def _is_file(ref: str) -> bool:
    """Whether `ref` names an existing path (a name too long or holding NUL names nothing)."""
    try:
        return Path(ref).exists()
    except (OSError, ValueError):
        return False


def _check_part(value: str, what: str, limit: int, shown: str) -> None:
    if not value:
        raise ObsplanError(
            f"expected a lock file or REV:PATH (the {what} is empty)", file=shown, hint="e.g. main:plans/prod.lock"
        )
    if value.startswith("-"):
        raise ObsplanError(f"a {what} may not start with '-'", file=shown, hint="name a branch, tag or commit id")
    if len(value) > limit:
        raise ObsplanError(f"the {what} is longer than {limit} characters", file=shown, hint=_HINT)
    if not value.isprintable():
        raise ObsplanError(f"the {what} holds control characters", file=shown, hint=_HINT)


def _commit_of(git: str, rev: str, path: str, shown: str) -> str:
    """The commit id `rev` names (`rev-parse --verify --quiet`, after `--end-of-options`), or exit 2."""
    done = subprocess.run(
        [git, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    commit = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0 or not commit or not all(c in "0123456789abcdef" for c in commit):
        raise ObsplanError(
            f"cannot read {path} at revision {rev}: not a commit in this repository", file=shown, hint=_HINT
        )
    return commit
