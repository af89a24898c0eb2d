"""The SSH side of a rollout, on pyinfra's API, run as one subprocess per rollout (`python -m
obsplan.rollout.worker`) so gevent's monkeypatching never touches the rollout process.

Reads JSON requests on stdin, one a line ({"action": "facts"|"apply"|"rollback", "hosts": [...], ...}, built by
runner.py); for each, connects to the hosts not connected yet in parallel (pyinfra's SSH connector: paramiko,
host keys checked against the host's known_hosts file, never auto-accepted) and keeps them connected for the
next request, does the per-host work in one greenlet per host, writes one JSON line per host result on stdout
as soon as that host is done, then `{"done": true}`. Commands run on the connection's own channels (exit
status from SSH); files go up through `cat` on a channel's stdin.
"""

from __future__ import annotations

import sys

import gevent.events

# obsplan has no gevent plugins: skip the entry-point scan gevent makes for each patched module (~0.3 s CPU)
gevent.events.notify_and_call_entry_points = gevent.events.notify  # type: ignore[assignment]

from gevent import monkey  # noqa: E402

monkey.patch_all()

# paramiko's ssh_config reader imports `invoke` when it is installed, only for `Match exec` lines; the worker reads
# no ssh_config (ssh_config_file is os.devnull), and invoke's import (~0.1 s CPU: unittest.mock, a vendored
# YAML) would be paid by every rollout. paramiko falls back as it does without invoke.
sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]

import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import paramiko  # noqa: E402
from gevent.lock import Semaphore  # noqa: E402
from pyinfra.api import Config, Inventory, State  # noqa: E402

import obsplan.rollout.bootstrap.host_side as bootstrap_host  # noqa: E402
from obsplan.rollout.outcome import judge  # noqa: E402

# paramiko checks each received packet's MAC in a Python loop over its bytes (at 100 hosts, ~18 % of this
# worker's CPU); hmac.compare_digest is the same constant-time comparison, done in C.
paramiko.util.constant_time_bytes_eq = hmac.compare_digest  # type: ignore[assignment]

_OUT = Semaphore()
ACTIVE_CHECK_SECONDS = 1.0


def _emit(data: dict[str, Any]) -> None:
    with _OUT:
        sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
        sys.stdout.flush()


def pyinfra_name(index: int) -> str:
    """The name pyinfra knows host number `index` by. Inventory names never reach pyinfra: a name such as
    `@local` or `@docker/x` would choose pyinfra's local or docker connector instead of SSH."""
    return f"obsplan-host-{index}"


def _state(hosts: list[dict[str, Any]], connect_timeout: int) -> Any:
    # each connection's reader wakes up this often to see whether it should stop (paramiko: every 0.1 s, which
    # for 100 idle connections is 1000 wake-ups a second of the worker's CPU); a close wakes it at once anyway
    paramiko.Transport._active_check_timeout = ACTIVE_CHECK_SECONDS  # type: ignore[attr-defined]

    names = [
        (
            pyinfra_name(i),
            {
                "ssh_hostname": h["address"],
                "ssh_port": h["port"],
                "ssh_user": h["ssh_user"],
                "ssh_key": os.path.expanduser(h["ssh_key"]),
                "ssh_known_hosts_file": os.path.expanduser(h["known_hosts"]),
                "ssh_strict_host_key_checking": "yes",
                "ssh_allow_agent": False,
                "ssh_look_for_keys": False,
                "ssh_config_file": os.devnull,
            },
        )
        for i, h in enumerate(hosts)
    ]
    config = Config(CONNECT_TIMEOUT=connect_timeout, PARALLEL=max(1, len(hosts)))
    return State(Inventory((names, {})), config)


MAX_OUTPUT = 64 * 1024 * 1024  # a command's stdout or stderr beyond this is cut (a runaway host, not obsplan)


def _read_all(f: Any) -> bytes:
    data = f.read(MAX_OUTPUT)
    while f.read(1 << 16):  # drain the rest so the remote end never blocks on a full window
        pass
    return bytes(data)


class Remote:
    """One connected host: run a command (exit code and output), upload a file, on the SSH connection pyinfra
    opened (one channel per command; no SFTP session)."""

    def __init__(self, host: Any) -> None:
        self.host = host

    def _channel(self, command: str, timeout: int) -> Any:
        chan = self.host.connector.client.get_transport().open_session(timeout=30)
        chan.settimeout(timeout)
        chan.exec_command(command)
        return chan

    def run(
        self, command: str, timeout: int = 900, stdin: bytes | Path | None = None
    ) -> tuple[int, list[str], list[str]]:
        chan = self._channel(command, timeout)
        with chan:
            err_job = gevent.spawn(_read_all, chan.makefile_stderr("rb"))
            if isinstance(stdin, Path):
                with stdin.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        chan.sendall(chunk)
            elif stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            out = _read_all(chan.makefile("rb"))
            err = err_job.get()
            rc = chan.recv_exit_status()
        lines = out.decode("utf-8", "replace").splitlines()
        return rc, [x for x in lines if x != ""], err.decode("utf-8", "replace").splitlines()

    def put(self, local: Path, remote: str) -> None:
        """Through `cat` into a temporary name, then renamed (never a half-written file at `remote`)."""
        tmp = shlex.quote(remote + ".part")
        rc, _out, err = self.run(f"cat > {tmp} && mv -f {tmp} {shlex.quote(remote)}", stdin=local)
        if rc != 0:
            raise RuntimeError(f"upload of {local} to {remote} failed: exit {rc} {' '.join(err)[-300:]}")

    def put_if_changed(self, local: Path, remote: str) -> None:
        digest = hashlib.sha256(local.read_bytes()).hexdigest()
        rc, out, _ = self.run(f"sha256sum {shlex.quote(remote)} 2>/dev/null")
        if rc == 0 and out and out[0].split()[0] == digest:
            return
        self.put(local, remote)


def _connect(host: Any) -> str | None:
    try:
        host.connect(show_errors=False, raise_exceptions=True)
    except Exception as exc:  # noqa: BLE001 - any connection failure is this host's result
        return f"{type(exc).__name__}: {exc}"
    return None if host.connected else "not connected"


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _version(r: Remote, spec: dict[str, Any]) -> str:
    rc, out, err = r.run(f"{shlex.quote(spec['obsplan'])} --version")
    if rc != 0:
        return f"? (no working obsplan at {spec['obsplan']}: exit {rc} {' '.join(err)[-200:]})"
    return out[-1].rsplit(" ", 1)[-1] if out else "?"


def _facts(r: Remote, spec: dict[str, Any]) -> dict[str, Any] | None:
    """`obsplan facts` when the host's obsplan has it (an unknown command exits 2 'No such command': None)."""
    rc, out, _err = r.run(f"{shlex.quote(spec['obsplan'])} facts --root {shlex.quote(spec['root'])}")
    if rc != 0:
        return None
    try:
        return json.loads("\n".join(out))
    except ValueError:
        return None


def _upload(r: Remote, spec: dict[str, Any], req: dict[str, Any]) -> tuple[str, str | None]:
    remote_dir = f"{spec['root'].rstrip('/')}/var/lib/obsplan/rollout/{req['rollout_id']}"
    lock = f"{remote_dir}/lock.json"
    q = shlex.quote
    command = f"mkdir -p {q(remote_dir)} && cat > {q(lock)}.part && mv -f {q(lock)}.part {q(lock)}"
    rc, _out, err = r.run(command, stdin=Path(req["lock"]))
    if rc != 0:
        raise RuntimeError(f"upload of the lock to {lock} failed: exit {rc} {' '.join(err)[-300:]}")
    bundle = None
    if req.get("bundle"):
        bundle = f"{remote_dir}/bundle.tar"
        r.put_if_changed(Path(req["bundle"]), bundle)
    return lock, bundle


def _apply_cmd(spec: dict[str, Any], req: dict[str, Any], lock: str, bundle: str | None, component: str | None) -> str:
    parts = [
        spec["obsplan"],
        "apply",
        lock,
        "--root",
        spec["root"],
        "--service-manager",
        spec["service_manager"],
        "--json",
        *req.get("apply_args", []),
    ]
    if bundle:
        parts += ["--bundle", bundle]
    if component:
        parts += ["--component", component]
    return " ".join(shlex.quote(p) for p in parts)


def _classify(rc: int, err: list[str], r: Remote, spec: dict[str, Any], req: dict[str, Any]) -> tuple[str, str]:
    text = " ".join(err)[-600:]
    if rc == 0:
        return "ok", ""
    if rc == 127 or (rc == 2 and "format_version" in text):
        return "refused", (
            f"the host's obsplan {_version(r, spec)} cannot apply this lock (format "
            f"{req['lock_format']}, written by obsplan {req['lock_obsplan_version']}): {text}"
        )
    if rc == 2:
        return "refused", text
    return "failed", text or f"apply exited {rc}"


def _present(facts: dict[str, Any]) -> list[str]:
    found = facts.get("components")
    comps: dict[str, Any] = found if isinstance(found, dict) else {}
    return [
        c
        for c, f in comps.items()
        if isinstance(f, dict) and (f.get("installed") or f.get("linked") or f.get("served"))
    ]


def facts_host(host: Any, spec: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
    """`obsplan facts` alone (the rollout's first pass over the hosts whose components the inventory leaves open)."""
    facts = _facts(Remote(host), spec)
    if facts is None:
        return {"status": "failed", "reason": f"`{spec['obsplan']} facts` gave no facts"}
    return {"status": "ok", "facts": facts}


def apply_host(host: Any, spec: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
    """Facts (collected while the lock and bundle upload), then `obsplan apply --json` per the host's components
    (decided by the rollout; when it could not, the lock's components the facts show the host has).
    A lock of a format the host's obsplan cannot read is refused by apply itself before it touches anything."""
    r = Remote(host)
    _emit({"host": spec["name"], "progress": "collecting facts, uploading"})
    known = bool(spec.get("facts_known"))  # collected by the rollout's facts pass on this connection
    boot = req.get("wheelhouse")
    facts_job = None if known or boot else gevent.spawn(_facts, r, spec)
    lock, bundle = _upload(r, spec, req)
    if boot:
        obs, how = bootstrap_host.ensure(r, spec, boot, lock)
        if obs is None:
            return {**judge("failed", how, []), "facts": None}
        spec = {**spec, "obsplan": obs}
        _emit({"host": spec["name"], "progress": f"obsplan: {how}"})
    facts = facts_job.get() if facts_job is not None else (None if known else _facts(r, spec))
    wanted = spec.get("components")
    if wanted is None and facts is None:
        return {
            "status": "refused",
            "reason": "the host's components are unknown: `obsplan facts` failed there "
            "(name them in the inventory: components:)",
            "facts": None,
        }
    if wanted is None:
        wanted = _present(facts or {})
    runs: list[str | None] = [c for c in req["lock_components"] if c in wanted]
    if runs and len(runs) == len(req["lock_components"]):
        runs = [None]  # the whole lock: one apply
    events: list[dict[str, Any]] = []
    status, reason = "ok", ""
    _emit({"host": spec["name"], "progress": "applying"})
    for component in runs:
        rc, out, err = r.run(_apply_cmd(spec, req, lock, bundle, component))
        events += _json_lines(out)
        status, reason = _classify(rc, err, r, spec, req)
        if status != "ok":
            break
    return {**judge(status, reason, events), "facts": facts}


def _supports_last_run(r: Remote, obs: str) -> bool:
    rc, out, _ = r.run(f"{obs} rollback --help")
    return rc == 0 and "--last-run" in " ".join(out)


def _served(r: Remote, spec: dict[str, Any]) -> dict[str, str | None]:
    obs, root = shlex.quote(spec["obsplan"]), shlex.quote(spec["root"])
    rc, out, _ = r.run(f"{obs} status --root {root} --service-manager {shlex.quote(spec['service_manager'])} --json")
    try:
        entries = json.loads("\n".join(out)) if rc == 0 else []
    except ValueError:
        entries = []
    return {e["component"]: e.get("served_version") for e in entries}


def rollback_host(host: Any, spec: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
    """`obsplan rollback --last-run` when the host's obsplan has it, else one rollback per changed component;
    then the old versions must be served."""
    r = Remote(host)
    venv = bootstrap_host.venv_obsplan(spec["root"])
    if req.get("wheelhouse") and r.run(f"{shlex.quote(spec['obsplan'])} --version")[0] != 0:
        spec = {**spec, "obsplan": venv}  # a host --bootstrap gave obsplan to
    obs, root = shlex.quote(spec["obsplan"]), shlex.quote(spec["root"])
    expect: dict[str, str | None] = spec["rollback"]
    common = f"--root {root} --json"
    if _supports_last_run(r, obs):
        commands = [f"{obs} rollback --last-run {common}"]
    else:
        commands = [
            f"{obs} rollback {shlex.quote(c)} {common} --service-manager {shlex.quote(spec['service_manager'])}"
            for c in expect
        ]
    errors = []
    for cmd in commands:
        rc, _out, err = r.run(cmd)
        if rc != 0:
            errors.append(f"{cmd.split(' rollback ', 1)[1].split(' --root')[0]}: exit {rc} {' '.join(err)[-300:]}")
    served = _served(r, spec)
    wrong = {c: served.get(c) for c, v in expect.items() if v is not None and served.get(c) != v}
    ok = not errors and not wrong
    reason = "; ".join(errors + [f"{c} serves {s!r}, expected {expect[c]}" for c, s in wrong.items()])
    return {
        "status": "rolled_back" if ok else "rollback_failed",
        "reason": reason,
        "served": served,
        "method": "last-run" if len(commands) == 1 and "--last-run" in commands[0] else "per-component",
    }


ACTIONS = {"apply": apply_host, "rollback": rollback_host, "facts": facts_host}


def _connected(host: Any) -> str | None:
    """None when the host is (still, or now again) connected, else why not."""
    client = getattr(host.connector, "client", None) if host.connected else None
    transport = client.get_transport() if client is not None else None
    if transport is not None and transport.is_active():
        return None
    if host.connected:
        host.disconnect()
    return _connect(host)


def _one(state: Any, index: int, spec: dict[str, Any], req: dict[str, Any]) -> None:
    host = state.inventory.get_host(pyinfra_name(index))
    if host.connector_cls.__name__ != "SSHConnector":  # the rule above, checked where it matters
        _emit({"host": spec["name"], "result": {"status": "failed", "reason": "not an SSH connection"}})
        return
    why = _connected(host)
    if why is not None:
        _emit({"host": spec["name"], "result": {"status": "unreachable", "reason": why}})
        return
    try:
        result = ACTIONS[req["action"]](host, spec, req)
    except Exception as exc:  # noqa: BLE001 - one host's trouble is that host's result
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    _emit({"host": spec["name"], "result": result})


def main() -> None:
    """First line: every host of the rollout ({"hosts": [...], "connect_timeout": N}); then one request a line
    until stdin closes; the hosts are disconnected at the end."""
    first = sys.stdin.readline()  # started early, imports done while the rollout reads the lock: maybe never used
    if not first:
        return
    init = json.loads(first)
    state = _state(init["hosts"], int(init.get("connect_timeout", 10)))
    index = {h["name"]: i for i, h in enumerate(init["hosts"])}  # pyinfra knows hosts by number only
    try:
        for line in sys.stdin:
            req = json.loads(line)
            gevent.joinall([gevent.spawn(_one, state, index[spec["name"]], spec, req) for spec in req["hosts"]])
            _emit({"done": True})
    finally:  # all at once: each disconnect waits for its transport's reader to notice
        gevent.joinall([gevent.spawn(host.disconnect) for host in state.inventory if host.connected])


if __name__ == "__main__":
    main()
