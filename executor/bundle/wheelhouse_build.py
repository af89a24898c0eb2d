"""Building the wheelhouse of `obsplan bundle --with-obsplan` on the connected side: a wheel of the running
obsplan (built from its source tree when it is installed from one, an editable install included, else repacked
from the installed distribution's files), then `pip download` of its dependencies, pinned to the versions
installed here, as wheels for the hosts' Python (`--python-version`, `--python-platform`: pip's
`--python-version`/`--platform`), from the package index and/or local wheel directories (`--find-links`,
`--no-index`), plus pip itself (the hosts install with it, from the wheel)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from obsplan import __version__
from obsplan.kernel.errors import EXIT_FAILED, ObsplanError
from obsplan.lock.wheelhouse import DIR, INDEX, WheelhouseIndex

PIP_TIMEOUT = 1800


@dataclass(frozen=True)
class WheelOptions:
    python_version: str | None = None
    platform: str | None = None
    find_links: list[Path] = field(default_factory=list)
    no_index: bool = False


def build_wheelhouse(bundle_dir: Path, opts: WheelOptions) -> WheelhouseIndex:
    """`bundle_dir/wheelhouse/` with obsplan, its dependencies and pip, and its index; returns the index."""
    dist = metadata.distribution("obsplan")
    out = bundle_dir / DIR
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="obsplan-wheel-") as tmp:
        own = Path(tmp) / "own"
        own.mkdir()
        _obsplan_wheel(dist, own, opts)
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(_installed().items()) if n != "obsplan"))
        _pip_download(out, own, constraints, opts)
    wheels = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.whl"))}
    python = opts.python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    index = WheelhouseIndex(__version__, python, opts.platform or "", wheels)
    (bundle_dir / INDEX).write_bytes(index.to_json())
    return index


def _installed() -> dict[str, str]:
    """name → version of every distribution installed here from an index (not editable/local trees)."""
    out: dict[str, str] = {}
    for d in metadata.distributions():
        name = (d.metadata["Name"] or "").lower().replace("_", "-")
        if name and d.read_text("direct_url.json") is None:
            out.setdefault(name, d.version)
    return out


def _source_tree(dist: metadata.Distribution) -> Path | None:
    raw = dist.read_text("direct_url.json")
    if raw:
        info = json.loads(raw)
        url = str(info.get("url", ""))
        if "dir_info" in info and url.startswith("file://"):
            return Path(url[len("file://") :])
    tree = Path(__file__).resolve().parents[2]
    return tree if (tree / "pyproject.toml").is_file() and (tree / "obsplan" / "cli.py").is_file() else None


def _obsplan_wheel(dist: metadata.Distribution, out: Path, opts: WheelOptions) -> None:
    """From the source tree with the build backend installed here, else in pip's isolated build environment
    (setuptools and wheel from the index or --find-links); an installed distribution without a tree is repacked."""
    tree = _source_tree(dist)
    if tree is None:
        _repack(dist, out)
        return
    args = ["wheel", "--no-deps", "--no-cache-dir", "-w", str(out), str(tree)]
    try:
        _pip([*args, "--no-build-isolation"], "obsplan's wheel")
    except ObsplanError:
        _pip([*args, *_sources(opts)], "obsplan's wheel (isolated build: setuptools and wheel)")


def _sources(opts: WheelOptions) -> list[str]:
    args = [a for link in opts.find_links for a in ("--find-links", str(link))]
    return args + (["--no-index"] if opts.no_index else [])


def _repack(dist: metadata.Distribution, out: Path) -> None:
    """A wheel of an installed (non-editable) distribution from the files its RECORD lists."""
    files = [f for f in dist.files or [] if not str(f).startswith("..") and "__pycache__" not in str(f)]
    wheel = out / f"obsplan-{dist.version}-py3-none-any.whl"
    record_name = next(str(f) for f in files if str(f).endswith(".dist-info/RECORD"))
    rows = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(files, key=str):
            if str(f) == record_name or str(f).endswith((".pyc", "INSTALLER", "REQUESTED", "direct_url.json")):
                continue
            data = Path(str(dist.locate_file(f))).read_bytes()
            zf.writestr(str(f), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{f},sha256={digest},{len(data)}")
        zf.writestr(record_name, "\n".join([*rows, f"{record_name},,"]) + "\n")


def _pip_download(out: Path, own: Path, constraints: Path, opts: WheelOptions) -> None:
    args = ["download", "--only-binary", ":all:", "-d", str(out), "--find-links", str(own), "-c", str(constraints)]
    args += _sources(opts)
    if opts.python_version:
        args += ["--python-version", opts.python_version]
    if opts.platform:
        args += ["--platform", opts.platform]
    # The wheel file itself, not `obsplan==version`: a same-named wheel of older code in a --find-links cache
    # must neither be taken nor decide the dependencies.
    wheel = next(own.glob("obsplan-*.whl"))
    _pip([*args, str(wheel), "pip"], "the dependencies' wheels")
    if not (out / wheel.name).is_file():
        shutil.copyfile(wheel, out / wheel.name)


def _pip(args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False, env=_env())
    except subprocess.TimeoutExpired:
        raise ObsplanError(f"pip took longer than {PIP_TIMEOUT} s for {what}", exit_code=EXIT_FAILED) from None
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])[-500:]
        raise ObsplanError(
            f"pip could not get {what}: {tail}",
            key="--with-obsplan",
            hint="check --python-version/--python-platform, or give --find-links DIR with the wheels",
            exit_code=EXIT_FAILED,
        )


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PIP_REQUIRE_VIRTUALENV")}
