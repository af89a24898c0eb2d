"""Reading an inventory file: the bytes (a regular file, size-capped, never a wait on a FIFO), YAML through
obsplan's capped loader (size, depth, aliases, encoding) with duplicate keys refused, and Ansible INI files
through ansible-core's own parser (`ansible-inventory -i FILE --list`), never a second one."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import obsplan.safeio.yamlload as yamlload
from obsplan.kernel.errors import ObsplanError

_INI_HEADER = re.compile(r"^\[[^\[\]\s,]+\]\s*$")
_INI_SUFFIXES = (".ini", ".cfg")
MAX_LIST_BYTES = 64 * 1024 * 1024  # what `ansible-inventory --list` may print
LIST_TIMEOUT = 120.0


def read_regular(path: Path, key: str, limit: int) -> bytes:
    """At most `limit` bytes of a regular file; a FIFO, a device or a directory is refused without waiting."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ObsplanError(
            f"cannot read: {exc.strerror or exc}", file=str(path), key=key, hint="check the path"
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ObsplanError(
                f"is not a regular file ({_kind(mode)})", file=str(path), key=key, hint="name a regular file"
            )
        data = os.read(fd, limit + 1)
        while len(data) <= limit:
            more = os.read(fd, limit + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as exc:
        raise ObsplanError(
            f"cannot read: {exc.strerror or exc}", file=str(path), key=key, hint="check the path"
        ) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ObsplanError(f"is larger than {limit} bytes", file=str(path), key=key, hint="split or simplify it")
    return data


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return name
    return "not a file"


def check_local_file(value: str, file: str, key: str) -> None:
    """An SSH file the controller reads (known_hosts, a private key): when it exists it must be a regular file
    (a FIFO or `/dev/zero` would hang or exhaust the SSH worker)."""
    path = Path(os.path.expanduser(value))
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing: that host is unreachable, reported per host
    if not stat.S_ISREG(mode):
        raise ObsplanError(
            f"{path} is not a regular file ({_kind(mode)})", file=file, key=key, hint="name a regular file"
        )


_MISSING_HINTS = {
    "ssh_key": "create it (ssh-keygen -t ed25519 -f {path}) or point ssh_key (defaults: or the host) at the key",
    "known_hosts": "add the hosts' keys to it, checked out of band (ssh-keyscan ADDRESS), or point known_hosts at "
    "the file that has them",
}


def require_ssh_files(hosts: list[Any], file: str) -> None:
    """Before any host is contacted: each host's private key and known_hosts exist on this controller and can be
    read. Loading an inventory does not ask this (a dry run and `export ansible` need no key here); a real
    rollout or facts pass does, so a missing key stops it with exit 2 instead of failing hosts batch after batch."""
    for h in hosts:
        for key in ("ssh_key", "known_hosts"):
            path = Path(os.path.expanduser(getattr(h, key)))
            if not path.is_file():
                why = "does not exist" if not path.exists() else "is not a regular file"
            elif not os.access(path, os.R_OK):
                why = "cannot be read"
            else:
                continue
            hint = _MISSING_HINTS[key].format(path=path)
            raise ObsplanError(f"{path} {why}", file=file, key=f"{h.name}.{key}", hint=hint)


def is_ini(path: Path, text: str) -> bool:
    """An Ansible INI inventory: named *.ini/*.cfg, or its first line that is not a comment is a `[group]` header."""
    if path.suffix.lower() in _INI_SUFFIXES:
        return True
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";", "---")):
            return bool(_INI_HEADER.match(stripped))
    return False


def load_yaml(text: str, name: str) -> Any:
    """obsplan's one strict YAML loader (caps, duplicate keys refused naming key and line); a tagged scalar a
    constructor cannot build (`!!int ""`) is a malformed value, not a crash."""
    try:
        return yamlload.load(text, name)
    except (IndexError, KeyError, AttributeError) as exc:
        raise ObsplanError(f"malformed YAML value: {exc!r}", file=name, hint="quote the value") from None


def _ansible_inventory() -> str | None:
    here = str(Path(sys.executable).parent)
    return shutil.which("ansible-inventory", path=os.pathsep.join([here, os.environ.get("PATH", os.defpath)]))


def ansible_list(path: Path) -> dict[str, Any]:
    """`ansible-inventory -i FILE --list` with only the INI plugin enabled (an executable file is never run as an
    inventory script), a parse failure being a failure, bounded in time and output."""
    exe = _ansible_inventory()
    if exe is None:
        raise ObsplanError(
            "an Ansible INI inventory is read by ansible-core's parser, and ansible-inventory is not installed",
            file=str(path),
            key="--inventory",
            hint="pip install ansible-core, or convert it once: ansible-inventory -i FILE --list -y > hosts.yml",
        )
    env = {
        **os.environ,
        "ANSIBLE_INVENTORY_ENABLED": "ini",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
        "ANSIBLE_NOCOLOR": "1",
    }
    try:
        proc = subprocess.run(
            [exe, "-i", str(path.resolve()), "--list"],
            capture_output=True,
            env=env,
            timeout=LIST_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except subprocess.TimeoutExpired:
        raise ObsplanError(
            f"ansible-inventory did not finish in {LIST_TIMEOUT:.0f} s", file=str(path), hint="check the file"
        ) from None
    return _parse_list(proc, path)


def _parse_list(proc: subprocess.CompletedProcess[bytes], path: Path) -> dict[str, Any]:
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        why = next((line for line in err if "ERROR" in line or "Failed" in line), err[-1] if err else "")
        raise ObsplanError(
            f"ansible-inventory cannot parse it: {why[-300:]}", file=str(path), hint="fix the INI inventory"
        )
    if len(proc.stdout) > MAX_LIST_BYTES:
        raise ObsplanError("ansible-inventory printed too much", file=str(path), hint="split the inventory")
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise ObsplanError("ansible-inventory printed no JSON", file=str(path), hint="check ansible-core") from None
    if not isinstance(data, dict):
        raise ObsplanError("ansible-inventory printed no mapping", file=str(path), hint="check ansible-core")
    return data
