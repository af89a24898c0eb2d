"""Read a lock named on the command line: a file, or `REV:PATH` as of a git revision (`main:plans/prod.lock`),
read with `git show` from the current directory's repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from obsplan.errors import ObsplanError
from obsplan.lockfile import Lock, load_lock, parse_lock


def read_lock_ref(ref: str) -> Lock:
    """A lock file path, or REV:PATH (PATH relative to the repository root, or `./`-relative to the current
    directory, as `git show` takes it). An existing file always wins over the REV:PATH reading."""
    if Path(ref).exists() or ":" not in ref:
        return load_lock(Path(ref))
    rev, _, path = ref.partition(":")
    if not rev or not path:
        raise ObsplanError("expected a lock file or REV:PATH", file=ref, hint="e.g. main:plans/prod.lock")
    git = shutil.which("git")
    if git is None:
        raise ObsplanError("git is not installed", file=ref, hint="install git, or pass a lock file")
    done = subprocess.run([git, "show", f"{rev}:{path}"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["git show failed"])[-1].removeprefix("fatal: ")
        raise ObsplanError(
            f"cannot read {path} at revision {rev}: {why}",
            file=ref,
            hint="check the revision (git fetch it first in CI) and the path from the repository root",
        )
    return parse_lock(done.stdout, ref)
