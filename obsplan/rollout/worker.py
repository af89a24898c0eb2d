"""The SSH side of a batch, on pyinfra's API, run as a subprocess (`python -m obsplan.rollout.worker`) so
gevent's monkeypatching never touches the rollout process.

Reads one JSON request on stdin ({"action": "apply"|"rollback", "hosts": [...], ...}, built by runner.py),
connects to every host in parallel (pyinfra's SSH connector: paramiko, host keys checked against the host's
known_hosts file, never auto-accepted), does the per-host work in one greenlet per host and writes one JSON
line per host result on stdout as soon as that host is done.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.lock import Semaphore  # noqa: E402

from obsplan.rollout import bootstrap_host  # noqa: E402
from obsplan.rollout.outcome import judge  # noqa: E402

_OUT = Semaphore()
RC_MARK = "__obsplan_rc="


def _emit(data: dict[str, Any]) -> None:
    with _OUT:
        sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
        sys.stdout.flush()


def pyinfra_name(index: int) -> str:
    """The name pyinfra knows host number `index` by. Inventory names never reach pyinfra: a name such as
    `@local` or `@docker/x` would choose pyinfra's local or docker connector instead of SSH."""
    return f"obsplan-host-{index}"


def _state(hosts: list[dict[str, Any]], connect_timeout: int) -> Any:
    from pyinfra.api import Config, Inventory, State

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


class Remote:
    """One connected host: run a command (exit code and output), upload a file."""

    def __init__(self, host: Any) -> None:
        self.host = host

    def run(self, command: str, timeout: int = 900) -> tuple[int, list[str], list[str]]:
        from pyinfra.api import StringCommand

        wrapped = f"{command}; printf '\\n{RC_MARK}%s\\n' $?"
        _ok, out = self.host.run_shell_command(StringCommand(wrapped), _timeout=timeout)
        stdout = out.stdout_lines
        rc = 255
        for i in range(len(stdout) - 1, -1, -1):
            if stdout[i].startswith(RC_MARK):
                rc = int(stdout[i][len(RC_MARK) :])
                stdout = stdout[:i]
                break
        return rc, [line for line in stdout if line != ""], out.stderr_lines

    def put(self, local: Path, remote: str) -> None:
        if not self.host.put_file(str(local), remote):
            raise RuntimeError(f"upload of {local} to {remote} failed")

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
    r.run(f"mkdir -p {shlex.quote(remote_dir)}")
    lock = f"{remote_dir}/lock.json"
    r.put(Path(req["lock"]), lock)
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


def apply_host(host: Any, spec: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
    """Facts (collected while the lock and bundle upload), then `obsplan apply --json` per the host's components.
    A lock of a format the host's obsplan cannot read is refused by apply itself before it touches anything."""
    r = Remote(host)
    _emit({"host": spec["name"], "progress": "collecting facts, uploading"})
    facts_job = None if req.get("wheelhouse") else gevent.spawn(_facts, r, spec)
    lock, bundle = _upload(r, spec, req)
    if req.get("wheelhouse"):
        obs, how = bootstrap_host.ensure(r, spec, req["wheelhouse"], lock)
        if obs is None:
            return {**judge("failed", how, []), "facts": None}
        spec = {**spec, "obsplan": obs}
        _emit({"host": spec["name"], "progress": f"obsplan: {how}"})
    facts = facts_job.get() if facts_job is not None else _facts(r, spec)
    wanted = spec.get("components")
    runs = [c for c in req["lock_components"] if c in wanted] if wanted is not None else [None]
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


ACTIONS = {"apply": apply_host, "rollback": rollback_host}


def _one(state: Any, index: int, spec: dict[str, Any], req: dict[str, Any]) -> None:
    host = state.inventory.get_host(pyinfra_name(index))
    if host.connector_cls.__name__ != "SSHConnector":  # the rule above, checked where it matters
        _emit({"host": spec["name"], "result": {"status": "failed", "reason": "not an SSH connection"}})
        return
    why = _connect(host)
    if why is not None:
        _emit({"host": spec["name"], "result": {"status": "unreachable", "reason": why}})
        return
    try:
        result = ACTIONS[req["action"]](host, spec, req)
    except Exception as exc:  # noqa: BLE001 - one host's trouble is that host's result
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        host.disconnect()
    _emit({"host": spec["name"], "result": result})


def main() -> None:
    req = json.loads(sys.stdin.read())
    state = _state(req["hosts"], int(req.get("connect_timeout", 10)))
    greenlets = [gevent.spawn(_one, state, i, spec, req) for i, spec in enumerate(req["hosts"])]
    gevent.joinall(greenlets)


if __name__ == "__main__":
    main()
