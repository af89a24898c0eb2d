"""Inventories: obsplan's YAML (`defaults:` + `hosts:`) or an Ansible YAML inventory read as is.

Ansible: `ansible_host`, `ansible_user`, `ansible_port`, `ansible_ssh_private_key_file` map to the SSH
settings, every group a host is in (except `all`) becomes a label `<group>: "true"`, and the optional host/group
variables `obsplan_root`, `obsplan_service_manager`, `obsplan_components`, `obsplan_bin` and
`obsplan_known_hosts` set the obsplan fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from obsplan import yamlload
from obsplan.errors import ObsplanError


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ssh_user: str = "root"
    ssh_key: str = "~/.ssh/id_ed25519"
    known_hosts: str = "~/.ssh/known_hosts"
    root: str = "/"
    service_manager: Literal["auto", "systemd", "supervisord"] = "auto"
    obsplan: str = "obsplan"


class HostEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str
    port: int = 22
    ssh_user: str | None = None
    ssh_key: str | None = None
    known_hosts: str | None = None
    root: str | None = None
    service_manager: Literal["auto", "systemd", "supervisord"] | None = None
    obsplan: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    components: list[str] | None = None


class InventoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    prometheus: str | None = None
    hosts: dict[str, HostEntry]


class Host(BaseModel):
    """One host with every default resolved (what the runner and the journal see)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    address: str
    port: int
    ssh_user: str
    ssh_key: str
    known_hosts: str
    root: str
    service_manager: str
    obsplan: str
    labels: dict[str, str]
    components: list[str] | None


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: list[Host]
    prometheus: str | None = None


def load_inventory(path: Path) -> Inventory:
    if path.is_dir():
        raise ObsplanError("cannot read the inventory: is a directory", file=str(path), key="--inventory")
    raw = yamlload.load_file(path)  # the one strict loader: a host or key written twice is refused
    if not isinstance(raw, dict):
        raise ObsplanError("an inventory is a mapping", file=str(path), hint="see `obsplan rollout --help`")
    inv = _from_ansible(raw, path) if _looks_ansible(raw) else _from_obsplan(raw, path)
    if not inv.hosts:
        raise ObsplanError("the inventory has no hosts", file=str(path), key="hosts", hint="add at least one host")
    return inv


def _looks_ansible(raw: dict[str, Any]) -> bool:
    return "hosts" not in raw or not isinstance(raw.get("hosts"), dict) or "all" in raw


def _from_obsplan(raw: dict[str, Any], path: Path) -> Inventory:
    try:
        data = InventoryFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ObsplanError(err["msg"], file=str(path), key=key, hint="see the inventory format in README.md") from None
    d = data.defaults
    hosts = [
        Host(
            name=name,
            address=h.address,
            port=h.port,
            ssh_user=h.ssh_user or d.ssh_user,
            ssh_key=h.ssh_key or d.ssh_key,
            known_hosts=h.known_hosts or d.known_hosts,
            root=h.root or d.root,
            service_manager=h.service_manager or d.service_manager,
            obsplan=h.obsplan or d.obsplan,
            labels=h.labels,
            components=h.components,
        )
        for name, h in data.hosts.items()
    ]
    return Inventory(hosts=hosts, prometheus=data.prometheus)


def _walk_ansible(
    name: str,
    group: dict[str, Any],
    inherited: dict[str, Any],
    groups: list[str],
    out: dict[str, tuple[dict[str, Any], list[str]]],
) -> None:
    group = group or {}
    variables = {**inherited, **(group.get("vars") or {})}
    here = groups + ([name] if name != "all" else [])
    for host, hvars in (group.get("hosts") or {}).items():
        prev_vars, prev_groups = out.get(host, ({}, []))
        out[host] = ({**prev_vars, **variables, **(hvars or {})}, sorted(set(prev_groups + here)))
    for child, sub in (group.get("children") or {}).items():
        _walk_ansible(child, sub, variables, here, out)


def _from_ansible(raw: dict[str, Any], path: Path) -> Inventory:
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for name, group in raw.items():
        if not isinstance(group, dict | None):
            raise ObsplanError("an Ansible group is a mapping", file=str(path), key=name, hint="hosts:/vars:/children:")
        _walk_ansible(name, group or {}, {}, [], found)
    d = Defaults()
    hosts = []
    for name, (v, groups) in sorted(found.items()):
        comps = v.get("obsplan_components")
        hosts.append(
            Host(
                name=name,
                address=str(v.get("ansible_host", name)),
                port=int(v.get("ansible_port", 22)),
                ssh_user=str(v.get("ansible_user", d.ssh_user)),
                ssh_key=str(v.get("ansible_ssh_private_key_file", d.ssh_key)),
                known_hosts=str(v.get("obsplan_known_hosts", d.known_hosts)),
                root=str(v.get("obsplan_root", d.root)),
                service_manager=str(v.get("obsplan_service_manager", d.service_manager)),
                obsplan=str(v.get("obsplan_bin", d.obsplan)),
                labels={g: "true" for g in groups},
                components=list(comps) if comps is not None else None,
            )
        )
    return Inventory(
        hosts=hosts,
        prometheus=raw.get("all", {}).get("vars", {}).get("obsplan_prometheus")
        if isinstance(raw.get("all"), dict)
        else None,
    )


def select(inv: Inventory, limit: list[str] | None, file: str) -> list[Host]:
    """The hosts to roll out to, in inventory order; `--limit` names hosts (unknown names are bad input)."""
    if not limit:
        return list(inv.hosts)
    names = {h.name for h in inv.hosts}
    unknown = [n for n in limit if n not in names]
    if unknown:
        raise ObsplanError(
            f"--limit names unknown host(s) {', '.join(unknown)}",
            file=file,
            key="--limit",
            hint=f"known hosts: {', '.join(sorted(names))}",
        )
    return [h for h in inv.hosts if h.name in limit]
