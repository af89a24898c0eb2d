"""mysqld_exporter's credentials as the running installation has them, for a lock that does not give
`runtime.mysql` (seed 003: the exporter already runs with its credentials; versions.yaml need not repeat them).

Read, in order: the unit, program section and environment files of the component (obsplan's own and ones made
by hand or by a package), the command line and environment of the process serving its port; in each, a
`--config.my-cnf` file (0.15+) or `DATA_SOURCE_NAME` (0.14 and older); else the exporter's default
`~/.my.cnf` (of the serving process's HOME, root, or Debian's prometheus user). The password is written to
an obsplan-owned file (0600) that `runtime.mysql.password_file` then names; nothing else is written.
"""

from __future__ import annotations

import configparser
import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from obsplan.executor.host.adopt_install import foreign_files, port_holders
from pydantic import ValidationError

from obsplan.kernel.errors import ObsplanError
from obsplan.lock.service_def import MysqlConnection
from obsplan.safeio.fsio import write_atomic

if TYPE_CHECKING:
    from obsplan.executor.host.stepfacts import StepFacts

PASSWORD_DIR = "/etc/obsplan/credentials"
_MY_CNF = re.compile(r"--config\.my-cnf[= ]['\"]?([^\s'\"]+)")
_ENV_FILE = re.compile(r"^EnvironmentFile=-?(\S+)", re.M)
_DSN = re.compile(r"DATA_SOURCE_NAME=['\"]?([^:@/\s'\"]+):([^\s'\"]*)@tcp\(([^)\s]+:\d+)\)/")
_HOMES = ("/root", "/var/lib/prometheus")  # root; Debian's prometheus-mysqld-exporter runs as `prometheus`


def mysql_from_host(facts: StepFacts) -> tuple[MysqlConnection, str] | None:
    """(the connection, where it was read) from the running installation, or None."""
    texts = _sources(facts)
    for where, text in texts:
        for found in _MY_CNF.findall(text):
            got = _from_my_cnf(facts, _host_path(facts, found))
            if got is not None:
                return _connection(facts, *got), f"{found} (--config.my-cnf of {where})"
        dsn = _DSN.search(text)
        if dsn:
            return _connection(facts, dsn.group(3), dsn.group(1), dsn.group(2)), f"DATA_SOURCE_NAME of {where}"
    homes = [m.group(1) for _, t in texts for m in re.finditer(r"(?:^|\0)HOME=([^\0\n]+)", t)] + list(_HOMES)
    for home in dict.fromkeys(homes):
        got = _from_my_cnf(facts, _host_path(facts, f"{home.rstrip('/')}/.my.cnf"))
        if got is not None:
            return _connection(facts, *got), f"{home.rstrip('/')}/.my.cnf (the exporter's default)"
    return None


def _sources(facts: StepFacts) -> list[tuple[str, str]]:
    """(name, text) of every unit, program section, environment file and serving process found."""
    out = []
    with contextlib.suppress(ObsplanError):
        for f in foreign_files(facts.ctx, facts):
            text = _read(f)
            out.append((str(f), text))
            for env in _ENV_FILE.findall(text):
                out.append((env, _read(_host_path(facts, env))))
    for pid in port_holders(facts.runtime.port):
        proc = Path(f"/proc/{pid}")
        out.append((f"process {pid}", _read(proc / "cmdline").replace("\0", " ") + "\0" + _read(proc / "environ")))
    return out


def _read(path: Path | None) -> str:
    try:
        return path.read_text(errors="replace") if path is not None else ""
    except OSError:
        return ""


def _host_path(facts: StepFacts, text: str) -> Path | None:
    """A path named by the host (already under --root when obsplan rendered it), proven inside the root."""
    layout = facts.ctx.layout
    try:
        if layout.root != Path("/") and Path(text).is_relative_to(layout.root):
            return layout.host("/" + str(Path(text).relative_to(layout.root)))
        return layout.host(text)
    except ObsplanError:
        return None


def _from_my_cnf(facts: StepFacts, path: Path | None) -> tuple[str, str, str] | None:
    """(address, user, password) of a my.cnf's [client] section, or None."""
    if path is None or not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False, allow_no_value=True)
    try:
        parser.read_string(_read(path))
    except configparser.Error:
        return None
    if not parser.has_section("client") or not parser.get("client", "user", fallback=None):
        return None
    client = parser["client"]
    host = (client.get("host") or "localhost").strip()
    address = f"{host}:{(client.get('port') or '3306').strip()}"
    return address, client["user"].strip(), (client.get("password") or "").strip().strip("'\"")


def _connection(facts: StepFacts, address: str, user: str, password: str) -> MysqlConnection:
    """The connection, its password in obsplan's own 0600 file (rewritten only when it changed)."""
    rel = f"{PASSWORD_DIR}/{facts.c}-mysql.password"
    path = facts.ctx.layout.host(rel)
    if not facts.ctx.dry_run and _read(path) != password:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, password)  # mkstemp: 0600
    try:
        return MysqlConnection(address=address, user=user, password_file=rel)
    except ValidationError as exc:
        raise ObsplanError(f"the running installation's credentials are unusable: {exc.errors()[0]['msg']}") from None
