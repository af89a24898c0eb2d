"""The Ansible forms of an inventory, read as is: a YAML inventory (`all:`/groups with `hosts:`, `vars:`,
`children:`) and the JSON `ansible-inventory --list` prints for an INI one. Every group a host is in (except
`all` and `ungrouped`) becomes a label `<group>: "true"`; host order is the inventory's (first appearance).

Variables: `ansible_host`, `ansible_user`, `ansible_port`, `ansible_ssh_private_key_file` map to the SSH
settings; `obsplan_root`, `obsplan_service_manager`, `obsplan_components`, `obsplan_bin`,
`obsplan_known_hosts` set the obsplan fields, `obsplan_prometheus` (in `all`'s vars) the gates' Prometheus.
`ansible_connection` is ignored: obsplan always connects over SSH to the host's address. Every value is
type-checked: a wrong type is one line naming the file and the key, exit 2."""

from __future__ import annotations

from typing import Any

from obsplan.kernel.errors import ObsplanError

GROUP_KEYS = ("hosts", "vars", "children")
NOT_LABELS = ("all", "ungrouped")
SERVICE_MANAGERS = ("auto", "systemd", "supervisord")

Found = dict[str, tuple[dict[str, Any], list[str]]]


def _bad(file: str, key: str, what: str, hint: str) -> ObsplanError:
    return ObsplanError(what, file=file, key=key, hint=hint)


def _mapping(value: Any, file: str, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(file, key, f"is a {type(value).__name__}, not a mapping", "write it as `name: value` pairs")
    return value


def walk_yaml(raw: dict[str, Any], file: str) -> Found:
    """Every host with its merged variables and groups, in the order the file lists them."""
    found: Found = {}
    for name, group in raw.items():
        _walk(str(name), group, {}, [], found, file, str(name))
    return found


def _walk(
    name: str, group: Any, inherited: dict[str, Any], ancestors: list[str], out: Found, file: str, key: str
) -> None:
    group = _mapping(group, file, key)
    unknown = [str(k) for k in group if k not in GROUP_KEYS]
    if unknown:
        raise _bad(file, f"{key}.{unknown[0]}", "is not a group key", "a group has only hosts:, vars:, children:")
    variables = {**inherited, **_mapping(group.get("vars"), file, f"{key}.vars")}
    here = ancestors + [name]
    labels = [g for g in here if g not in NOT_LABELS]
    for host, hvars in _mapping(group.get("hosts"), file, f"{key}.hosts").items():
        hv = _mapping(hvars, file, f"{key}.hosts.{host}")
        prev_vars, prev_groups = out.get(str(host), ({}, []))
        out[str(host)] = ({**prev_vars, **variables, **hv}, sorted(set(prev_groups + labels)))
    for child, sub in _mapping(group.get("children"), file, f"{key}.children").items():
        if str(child) in here:
            raise _bad(file, f"{key}.children.{child}", f"group {child} contains itself", "remove the recursive group")
        _walk(str(child), sub, variables, here, out, file, f"{key}.children.{child}")


def walk_list(data: dict[str, Any], file: str) -> Found:
    """The hosts of `ansible-inventory --list` JSON, in the inventory's order (groups from `all` down)."""
    meta = _mapping(data.get("_meta"), file, "_meta")
    hostvars = _mapping(meta.get("hostvars"), file, "_meta.hostvars")
    found: Found = {}

    def visit(group: str, ancestors: list[str]) -> None:
        entry = _mapping(data.get(group), file, group)
        here = ancestors + [group]
        labels = [g for g in here if g not in NOT_LABELS]
        for host in _names(entry.get("hosts"), file, f"{group}.hosts"):
            prev = found.get(host, ({}, []))[1]
            found[host] = (_mapping(hostvars.get(host), file, f"_meta.hostvars.{host}"), sorted(set(prev + labels)))
        for child in _names(entry.get("children"), file, f"{group}.children"):
            if child in here:
                raise _bad(file, f"{group}.children", f"group {child} contains itself", "remove the recursive group")
            visit(child, here)

    visit("all", [])
    return found


def _names(value: Any, file: str, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(file, key, "is not a list of names", "check the inventory")
    return value


def text(v: dict[str, Any], name: str, var: str, default: str, file: str) -> str:
    value = v.get(var, default)
    if not isinstance(value, str) or not value:
        raise _bad(file, f"{name}.{var}", f"is {value!r}, not a non-empty string", f"give {var} as text")
    return value


def port(v: dict[str, Any], name: str, file: str) -> int:
    value = v.get("ansible_port", 22)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _bad(file, f"{name}.ansible_port", f"is {value!r}, not a port number", "a number from 1 to 65535")
    return value


def components(v: dict[str, Any], name: str, file: str) -> list[str] | None:
    value = v.get("obsplan_components")
    if value is None:
        return None
    if isinstance(value, str):
        value = [c.strip() for c in value.split(",") if c.strip()]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise _bad(file, f"{name}.obsplan_components", f"is {value!r}, not a list of names", "[node_exporter, ...]")
    return value


def service_manager(v: dict[str, Any], name: str, file: str) -> str:
    value = text(v, name, "obsplan_service_manager", "auto", file)
    if value not in SERVICE_MANAGERS:
        raise _bad(file, f"{name}.obsplan_service_manager", f"is {value!r}", f"one of {', '.join(SERVICE_MANAGERS)}")
    return value


def python(v: dict[str, Any], name: str, default: str, file: str) -> str:
    """`ansible_python_interpreter`; Ansible's discovery values (`auto`, `auto_silent`, ...) mean the default."""
    value = text(v, name, "ansible_python_interpreter", default, file)
    return default if value.startswith("auto") else value


def prometheus(value: Any, file: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _bad(file, "all.vars.obsplan_prometheus", f"is {value!r}, not a URL", "http://HOST:9090")
