"""`rollout --bundle FILE --bootstrap`, the controller's side: the bundle's wheelhouse (built by
`obsplan bundle LOCK -o FILE.tar --with-obsplan`) checked against its index and unpacked once into the state
directory, described to the SSH worker (bootstrap_host.py installs it on the hosts that need it)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.wheelhouse import from_bundle_tar


def prepare(bundle: Path | None, state_dir: Path | None) -> dict[str, Any]:
    """The wheelhouse for the worker: {dir, python_version, obsplan_version, pip_wheel, wheels}. With no state
    directory (--dry-run) it is only checked, in a temporary directory removed again."""
    if bundle is None:
        raise ObsplanError(
            "--bootstrap installs obsplan from the bundle's wheelhouse: give --bundle FILE.tar",
            key="--bootstrap",
            hint="obsplan bundle LOCK -o FILE.tar --with-obsplan; then rollout ... --bundle FILE.tar --bootstrap",
        )
    if state_dir is None:
        with tempfile.TemporaryDirectory(prefix="obsplan-wheelhouse-") as tmp:
            index = from_bundle_tar(bundle, Path(tmp))
        return _describe(index, None)
    digest = _sha256(bundle)
    dest = state_dir / "wheelhouse" / digest[:32]
    if not (dest / ".complete").is_file():
        shutil.rmtree(dest, ignore_errors=True)
        index = from_bundle_tar(bundle, dest)
        (dest / ".complete").write_text(digest + "\n")
    else:
        index = from_bundle_tar(bundle, dest)  # re-checked: the bundle is the source of truth
    return _describe(index, dest)


def _describe(index: Any, dest: Path | None) -> dict[str, Any]:
    return {
        "dir": str(dest) if dest else None,
        "python_version": index.python_version,
        "obsplan_version": index.obsplan_version,
        "pip_wheel": index.pip_wheel,
        "wheels": index.wheels,
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
