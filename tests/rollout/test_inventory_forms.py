"""The three inventory forms end to end through the CLI's `rollout --dry-run`: an Ansible INI inventory read by
ansible-core's own parser (groups, `[group:vars]`, `[all:vars]`, host order), the same file refused with exit 2
when ansible-core is absent, and host order kept as the inventory lists it (Ansible YAML included)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obsplan.kernel.errors import ObsplanError
from obsplan.rollout.inventory.hosts import load_inventory

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "plans" / "production.lock"
OBSPLAN = str(Path(sys.executable).parent / "obsplan")

INI = """\
# a comment before the first group
zulu ansible_host=10.9.0.30

[web]
web2 ansible_host=10.9.0.12 ansible_port=2202
web1 ansible_host=10.9.0.11

[mon]
mon1 ansible_host=10.9.0.5 obsplan_components='["prometheus", "grafana"]'

[web:vars]
obsplan_components=node_exporter,nginx_exporter
ansible_user=deploy
obsplan_root=/srv

[all:vars]
obsplan_prometheus=http://10.9.0.5:9090
"""


def _dry_run(inv: Path, tmp_path: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = None if path is None else {"PATH": path, "HOME": str(tmp_path)}
    args = [OBSPLAN, "rollout", str(LOCK), "--inventory", str(inv), "--dry-run", "--json", "--canary", "0"]
    return subprocess.run(
        [*args, "--batches", "100%", "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


@pytest.mark.skipif(shutil.which("ansible-inventory") is None, reason="needs ansible-core")
def test_ini_inventory_through_ansible_core(tmp_path: Path) -> None:
    inv = tmp_path / "hosts"  # no suffix: recognised by its [group] headers... after a host line
    inv.write_text(INI)
    with pytest.raises(Exception, match="mapping"):  # a host line first: not recognisable without a suffix
        load_inventory(inv)
    inv = tmp_path / "hosts.ini"
    inv.write_text(INI)
    loaded = load_inventory(inv)
    assert [h.name for h in loaded.hosts] == ["zulu", "web2", "web1", "mon1"]  # the inventory's order
    h = {x.name: x for x in loaded.hosts}
    assert (h["web2"].address, h["web2"].port, h["web2"].ssh_user, h["web2"].root) == (
        "10.9.0.12",
        2202,
        "deploy",
        "/srv",
    )
    assert h["web1"].components == ["node_exporter", "nginx_exporter"] and h["web1"].labels == {"web": "true"}
    assert h["mon1"].components == ["prometheus", "grafana"] and h["zulu"].components is None
    assert (h["zulu"].address, h["zulu"].ssh_user, h["zulu"].labels) == ("10.9.0.30", "root", {})
    assert loaded.prometheus == "http://10.9.0.5:9090"
    proc = _dry_run(inv, tmp_path)
    assert proc.returncode == 0, proc.stderr
    evs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert evs[0]["prometheus"] == "http://10.9.0.5:9090" and evs[0]["hosts"] == ["zulu", "web2", "web1", "mon1"]
    steps = {e["host"]: e["steps"] for e in evs if e["event"] == "dry_run_host"}
    assert steps["web1"] == ["nginx_exporter@1.5.3"] or all(
        s.split("@")[0] in ("node_exporter", "nginx_exporter") for s in steps["web1"]
    )
    headed = tmp_path / "inventory"  # no suffix, a [group] header first: INI as well
    headed.write_text("[web]\nweb1 ansible_host=10.9.0.11\n")
    assert [x.address for x in load_inventory(headed).hosts] == ["10.9.0.11"]


def test_ini_without_ansible_core_is_exit_2_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ansible-inventory beside the interpreter nor on PATH (the interpreter here may well have one: ansible-core
    is a test dependency, so the lookup is pointed at an empty interpreter directory)."""
    inv = tmp_path / "hosts.ini"
    inv.write_text(INI)
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setattr(sys, "executable", str(bare / "python3"))
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(ObsplanError) as err:
        load_inventory(inv)
    assert err.value.exit_code == 2
    assert "ansible-core" in str(err.value) and err.value.file == str(inv)


def test_ansible_yaml_keeps_inventory_order(tmp_path: Path) -> None:
    inv = tmp_path / "a.yml"
    inv.write_text(
        "all:\n  children:\n    web:\n      hosts:\n        zz: {ansible_host: 10.0.0.3}\n        aa: {ansible_host: 10.0.0.1}\n"
        "    db:\n      hosts:\n        mm: {ansible_host: 10.0.0.2}\n        zz: {}\n"
    )
    loaded = load_inventory(inv)
    assert [h.name for h in loaded.hosts] == ["zz", "aa", "mm"]
    assert loaded.hosts[0].labels == {"db": "true", "web": "true"}


def test_pyinfra_never_sees_an_inventory_name() -> None:
    """Names such as `@local` or `@docker/x` would choose pyinfra's local or docker connector: the worker gives
    pyinfra its own names and the address, so every host is an SSH host (checked in a fresh interpreter:
    the worker monkeypatches with gevent)."""
    code = (
        "from obsplan.rollout.worker import _state\n"
        "names = ['@local', '@docker/alpine', '@chroot/x', '@ssh/evil', 'web1']\n"
        "hosts = [dict(name=n, address='10.0.0.1', port=22, ssh_user='root', ssh_key='k', known_hosts='kh') for n in names]\n"
        "state = _state(hosts, 5)\n"
        "print(sorted({h.connector_cls.__name__ for h in state.inventory}), sorted(h.name for h in state.inventory))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("]")[0] == "['SSHConnector'" and "@" not in out, out


def test_python_for_bootstrap_in_both_forms(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yaml"
    inv.write_text(
        "defaults: {python: /usr/bin/python3.11}\nhosts:\n  a: {address: 10.0.0.1}\n  b: {address: 10.0.0.2, python: /opt/py}\n"
    )
    assert [h.python for h in load_inventory(inv).hosts] == ["/usr/bin/python3.11", "/opt/py"]
    inv.write_text(
        "all:\n  hosts:\n    a: {ansible_python_interpreter: auto_silent}\n    b: {ansible_python_interpreter: /opt/py}\n"
        "    c: {}\n"
    )
    assert [h.python for h in load_inventory(inv).hosts] == ["python3", "/opt/py", "python3"]
