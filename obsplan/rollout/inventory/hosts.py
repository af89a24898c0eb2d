"""Inventories: obsplan's YAML (`defaults:` + `hosts:`), an Ansible YAML inventory read as is, or an Ansible
INI inventory read through ansible-core's own parser (inventory_ansible.py maps the Ansible variables).

Host names are labels only: obsplan always connects over SSH to the host's address (a name like `@local` or
`@docker/x` never chooses another connector). Host order is the inventory's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import obsplan.rollout.inventory.ansible_forms as ansible
import obsplan.rollout.inventory.inventory_file as source
import obsplan.safeio.yamlload as yamlload
from obsplan.kernel.errors import ObsplanError


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ssh_user: str = "root"
    ssh_key: str = "~/.ssh/id_ed25519"
    known_hosts: str = "~/.ssh/known_hosts"
    root: str = "/"
    service_manager: Literal["auto", "systemd", "supervisord"] = "auto"
    obsplan: str = "obsplan"
    python: str = "python3"


class HostEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    ssh_user: str | None = None
    ssh_key: str | None = None
    known_hosts: str | None = None
    root: str | None = None
    service_manager: Literal["auto", "systemd", "supervisord"] | None = None
    obsplan: str | None = None
    python: str | None = None
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
    python: str = "python3"  # the host's Python, for --bootstrap


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: list[Host]
    prometheus: str | None = None


def load_inventory(path: Path) -> Inventory:
    """An obsplan YAML inventory, an Ansible YAML inventory, or an Ansible INI inventory (ansible-core's parser).
    Then every host's known_hosts and key file, when present, must be a regular file."""
    text = yamlload.decode(source.read_regular(path, "--inventory", yamlload.MAX_BYTES), str(path))
    if source.is_ini(path, text):
        inv = _from_ansible(ansible.walk_list(source.ansible_list(path), str(path)), None, str(path))
    else:
        raw = source.load_yaml(text, str(path))
        if not isinstance(raw, dict):
            raise ObsplanError(
                "an inventory is a mapping",
                file=str(path),
                hint="obsplan YAML (defaults:, hosts:), Ansible YAML, or Ansible INI ([group] headers or *.ini)",
            )
        if _looks_ansible(raw):
            inv = _from_ansible(ansible.walk_yaml(raw, str(path)), raw.get("all"), str(path))
        else:
            inv = _from_obsplan(raw, path)
    if not inv.hosts:
        raise ObsplanError("the inventory has no hosts", file=str(path), key="hosts", hint="add at least one host")
    for h in inv.hosts:
        source.check_local_file(h.known_hosts, str(path), f"{h.name}.known_hosts")
        source.check_local_file(h.ssh_key, str(path), f"{h.name}.ssh_key")
    return inv


def _looks_ansible(raw: dict[str, Any]) -> bool:
    return "hosts" not in raw or not isinstance(raw.get("hosts"), dict) or "all" in raw


def _from_obsplan(raw: dict[str, Any], path: Path) -> Inventory:
    try:
        data = InventoryFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ObsplanError(err["msg"], file=str(path), key=key, hint="see docs/fleet.md (inventory)") from None
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
            python=h.python or d.python,
        )
        for name, h in data.hosts.items()
    ]
    return Inventory(hosts=hosts, prometheus=data.prometheus)


def _from_ansible(found: ansible.Found, all_group: Any, file: str) -> Inventory:
    d = Defaults()
    hosts = []
    for name, (v, groups) in found.items():
        hosts.append(
            Host(
                name=name,
                address=ansible.text(v, name, "ansible_host", name, file),
                port=ansible.port(v, name, file),
                ssh_user=ansible.text(v, name, "ansible_user", d.ssh_user, file),
                ssh_key=ansible.text(v, name, "ansible_ssh_private_key_file", d.ssh_key, file),
                known_hosts=ansible.text(v, name, "obsplan_known_hosts", d.known_hosts, file),
                root=ansible.text(v, name, "obsplan_root", d.root, file),
                service_manager=ansible.service_manager(v, name, file),
                obsplan=ansible.text(v, name, "obsplan_bin", d.obsplan, file),
                labels={g: "true" for g in groups},
                components=ansible.components(v, name, file),
                python=ansible.python(v, name, d.python, file),
            )
        )
    prom = None
    if isinstance(all_group, dict) and isinstance(all_group.get("vars"), dict):
        prom = all_group["vars"].get("obsplan_prometheus")
    elif all_group is None and found:  # ansible-inventory --list: all's vars are in every host's variables
        prom = next(iter(found.values()))[0].get("obsplan_prometheus")
    return Inventory(hosts=hosts, prometheus=ansible.prometheus(prom, file))


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
