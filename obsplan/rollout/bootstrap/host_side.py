"""`rollout --bootstrap`, the host's side (run inside the SSH worker): when the host has no obsplan that reads
this lock, the wheelhouse is uploaded to `<root>/var/lib/obsplan/wheelhouse/` and installed with
`pip install --no-index` (pip run from its own wheel: no network, no ensurepip needed) into a fresh virtual
environment at `<root>/opt/obsplan-venv`, made with the host's Python (`python:` in the inventory, Ansible's
`ansible_python_interpreter`; default `python3`). A Python that cannot take the wheels fails that host, naming
the Python."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Protocol

VENV = "opt/obsplan-venv"
WHEELS = "var/lib/obsplan/wheelhouse"
_PROBE = (
    "import sys, sysconfig; "
    "print(sys.implementation.name, '%d.%d' % sys.version_info[:2], sys.version.split()[0], sysconfig.get_platform())"
)


class Runs(Protocol):
    def run(self, command: str, timeout: int = 900) -> tuple[int, list[str], list[str]]: ...
    def put(self, local: Path, remote: str) -> None: ...


def venv_obsplan(root: str) -> str:
    return f"{root.rstrip('/')}/{VENV}/bin/obsplan"


def reads_lock(r: Runs, obsplan: str, lock: str) -> bool:
    """Whether `obsplan` runs on the host and reads this lock (`obsplan report LOCK` exits 0)."""
    rc, _out, _err = r.run(f"{shlex.quote(obsplan)} report {shlex.quote(lock)} >/dev/null 2>&1")
    return rc == 0


def ensure(r: Runs, spec: dict[str, Any], wheelhouse: dict[str, Any], lock: str) -> tuple[str | None, str]:
    """(the obsplan to use, or None) and what was done or why it failed."""
    if reads_lock(r, spec["obsplan"], lock):
        return spec["obsplan"], "present"
    target = venv_obsplan(spec["root"])
    if target != spec["obsplan"] and reads_lock(r, target, lock):
        return target, "present in the bootstrap venv"
    why = _install(r, spec, wheelhouse)
    if why:
        return None, why
    if not reads_lock(r, target, lock):
        return None, f"obsplan installed at {target} does not read the lock"
    return target, f"installed obsplan {wheelhouse['obsplan_version']} into {target.rsplit('/bin/', 1)[0]}"


def _install(r: Runs, spec: dict[str, Any], wheelhouse: dict[str, Any]) -> str:
    py = spec.get("python") or "python3"
    rc, out, err = r.run(f"{shlex.quote(py)} -c {shlex.quote(_PROBE)}")
    if rc != 0 or not out or len(out[-1].split()) != 4:
        return (
            f"no usable Python at {py!r} on the host (exit {rc}: {' '.join(err)[-200:]}); set python: in the inventory"
        )
    impl, version, full, platform = out[-1].split()
    described = f"the host's Python {full} ({py}, {impl}, {platform})"
    if impl != "cpython" or version != wheelhouse["python_version"]:
        return f"{described} cannot take the wheels, built for CPython {wheelhouse['python_version']}"
    root = spec["root"].rstrip("/")
    wheels, venv = f"{root}/{WHEELS}", f"{root}/{VENV}"
    _upload(r, wheels, wheelhouse)
    rc, _out, err = r.run(f"{shlex.quote(py)} -m venv --without-pip --clear {shlex.quote(venv)}")
    if rc != 0:
        return f"{described} could not create the venv {venv}: {' '.join(err)[-300:]}"
    pip = f"{wheels}/{wheelhouse['pip_wheel']}/pip"
    cmd = [f"{venv}/bin/python", pip, "install", "--no-index", "--find-links", wheels, "--no-cache-dir"]
    cmd += ["--disable-pip-version-check", "--quiet", f"obsplan=={wheelhouse['obsplan_version']}"]
    rc, _out, err = r.run(" ".join(shlex.quote(c) for c in cmd))
    if rc != 0:
        return f"{described} cannot take the wheels: pip install --no-index failed: {' '.join(err)[-400:]}"
    return ""


def _upload(r: Runs, remote: str, wheelhouse: dict[str, Any]) -> None:
    """Every wheel whose sha256 on the host differs (one listing, then only the missing ones)."""
    q = shlex.quote(remote)
    r.run(f"mkdir -p {q} && chmod 0755 {q}")
    _rc, out, _err = r.run(f"cd {q} && sha256sum -- *.whl 2>/dev/null")
    have = {line.split()[-1]: line.split()[0] for line in out if len(line.split()) == 2}
    for name, sha in sorted(wheelhouse["wheels"].items()):
        if have.get(name) != sha:
            r.put(Path(wheelhouse["dir"]) / name, f"{remote}/{name}")
