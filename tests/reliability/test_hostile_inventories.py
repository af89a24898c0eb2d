"""Hostile inventories (issue 18): wrong types in the Ansible form, lists where maps belong, recursive groups,
50,000-deep YAML, UTF-16, duplicate keys, a known_hosts or key that is a FIFO or /dev/zero, an INI file with
hostile values: one line naming the file (and the key), exit 2, never exit 3, never a wait. Through
`obsplan rollout --dry-run` (reads the inventory, touches nothing) and `export ansible --inventory`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obsplan.kernel.errors import ObsplanError
from obsplan.rollout.inventory.hosts import load_inventory
from tests.reliability.conftest import FUZZ_EXAMPLES, Record, no_hang
from tests.reliability.corpus import one_error_line, run

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "plans" / "production.lock"
NEEDS_ANSIBLE = pytest.mark.skipif(shutil.which("ansible-inventory") is None, reason="needs ansible-core")


def _ansible(host_vars: dict[str, Any]) -> str:
    return yaml.safe_dump({"all": {"children": {"web": {"hosts": {"web1": host_vars}}}}})


# case → (file name, content, substring of the error, key named in the error or None)
CASES: dict[str, tuple[str, bytes | str, str, str | None]] = {
    "port-abc": ("a.yml", _ansible({"ansible_port": "abc"}), "port number", "web1.ansible_port"),
    "port-huge": ("a.yml", _ansible({"ansible_port": 10**30}), "port number", "web1.ansible_port"),
    "port-list": ("a.yml", _ansible({"ansible_port": [22]}), "port number", "web1.ansible_port"),
    "host-int": ("a.yml", _ansible({"ansible_host": 10}), "string", "web1.ansible_host"),
    "user-map": ("a.yml", _ansible({"ansible_user": {"a": 1}}), "string", "web1.ansible_user"),
    "components-map": ("a.yml", _ansible({"obsplan_components": {"a": 1}}), "list", "web1.obsplan_components"),
    "service-manager": ("a.yml", _ansible({"obsplan_service_manager": "init"}), "init", None),
    "hosts-list": ("a.yml", "all:\n  hosts: [web1, web2]\n", "not a mapping", "all.hosts"),
    "vars-list": ("a.yml", "all:\n  vars: [a]\n  hosts: {web1: }\n", "not a mapping", "all.vars"),
    "children-list": ("a.yml", "all:\n  children: [web]\n", "not a mapping", "all.children"),
    "host-vars-list": ("a.yml", "all:\n  hosts:\n    web1: [a, b]\n", "not a mapping", "all.hosts.web1"),
    "group-scalar": ("a.yml", "web: 5\nall: {}\n", "not a mapping", "web"),
    "unknown-group-key": ("a.yml", "all:\n  host: {web1: }\n", "group key", "all.host"),
    "recursive-group": (
        "a.yml",
        "all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n"
        "              hosts: {web1: }\n",
        "contains itself",
        None,
    ),
    "recursive-anchor": ("a.yml", "all: &a\n  children:\n    x: *a\n", "itself", None),
    "deep-50000": ("a.yml", "all: " + "[" * 50_000 + "]" * 50_000 + "\n", "deeper", None),
    "utf16": ("a.yml", "hosts:\n  web1: {address: 10.0.0.1}\n".encode("utf-16"), "UTF-16", None),
    "not-utf8": ("a.yml", b"hosts:\n  web1: {address: \xff}\n", "UTF-8", None),
    "duplicate-host": (
        "a.yml",
        "hosts:\n  web1: {address: 10.0.0.1}\n  web1: {address: 10.0.0.2}\n",
        "duplicate key",
        "web1",
    ),
    "duplicate-ansible-var": (
        "a.yml",
        "all:\n  hosts:\n    web1: {ansible_host: 10.0.0.1, ansible_host: 10.0.0.9}\n",
        "duplicate key",
        "ansible_host",
    ),
    "obsplan-port-abc": ("a.yml", "hosts:\n  web1: {address: 10.0.0.1, port: abc}\n", "integer", "hosts.web1.port"),
    "obsplan-port-zero": ("a.yml", "hosts:\n  web1: {address: 10.0.0.1, port: 0}\n", "greater", "hosts.web1.port"),
    "obsplan-hosts-list": ("a.yml", "hosts:\n  - web1\nall: {}\n", "not a mapping", "hosts"),
    "yaml-tag": ("a.yml", "hosts:\n  web1: {address: 10.0.0.1, port: !!int ''}\n", "YAML", None),
    "scalar": ("a.yml", "just text\n", "mapping", None),
    "no-hosts": ("a.yml", "all: {}\n", "no hosts", "hosts"),
}


def _refused(result: Any, path: Path, needle: str, key: str | None) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    line = one_error_line(result)
    assert str(path) in line and needle in line, line
    if key is not None:
        assert key in line, line


def _dry_run(inv: Path, tmp_path: Path) -> Any:
    with no_hang(60):
        return run(
            ["rollout", str(LOCK), "--inventory", str(inv), "--dry-run", "--state-dir", str(tmp_path / "s")], tmp_path
        )


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_inventory_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    name, content, needle, key = CASES[case]
    inv = tmp_path / name
    inv.write_bytes(content if isinstance(content, bytes) else content.encode())
    _refused(_dry_run(inv, tmp_path), inv, needle, key)
    out = run(["export", "ansible", str(LOCK), "-o", str(tmp_path / "x"), "--inventory", str(inv)], tmp_path)
    _refused(out, inv, needle, key)
    assert not (tmp_path / "s").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "directory"])
@pytest.mark.parametrize("what", ["known_hosts", "ssh_key", "inventory"])
def test_special_files_are_refused_without_waiting(what: str, special: str, tmp_path: Path) -> None:
    target = tmp_path / "special"
    if special == "fifo":
        os.mkfifo(target)
    elif special == "directory":
        target.mkdir()
    else:
        target = Path(special)
    inv = tmp_path / "hosts.yml"
    entry = {"address": "10.0.0.1"} | ({what: str(target)} if what != "inventory" else {})
    inv.write_text(json.dumps({"hosts": {"web1": entry}}))
    inventory = target if what == "inventory" else inv
    result = _dry_run(inventory, tmp_path)
    assert result.exit_code == 2, result.output
    if what == "inventory" and special == "directory":  # click's own check of --inventory, before obsplan's
        assert "is a directory" in result.stderr and str(target) in result.stderr
        return
    line = one_error_line(result)
    assert str(inventory) in line and "regular file" in line, line
    if what != "inventory":
        assert f"web1.{what}" in line and str(target) in line, line


@NEEDS_ANSIBLE
def test_ini_with_hostile_values_is_exit_2(tmp_path: Path) -> None:
    inv = tmp_path / "hosts"
    for body, key in (
        ("[web]\nweb1 ansible_port=abc\n", "web1.ansible_port"),
        ("[web]\nweb1 ansible_host=10.0.0.1 obsplan_components='{\"a\": 1}'\n", "web1.obsplan_components"),
        ("[web]\nweb1\n[web:children]\nweb\n", None),
        ("[web\nweb1\n", None),
    ):
        inv.write_text(body)
        result = _dry_run(inv, tmp_path)
        assert result.exit_code == 2, (body, result.output)
        line = one_error_line(result)
        assert str(inv) in line and (key is None or key in line), line


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True),
    st.text(max_size=8),
)
_VALUES = st.recursive(
    _SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3)
)
_PLAUSIBLE = st.one_of(  # values that fit some variable, so that some documents load
    st.sampled_from(["10.0.0.1", "22", "root", "/srv", "auto", "supervisord", "http://mon:9090", "@local"]),
    st.integers(min_value=1, max_value=65535),
    st.lists(st.sampled_from(["node_exporter", "grafana"]), max_size=2),
)
_VARS = st.dictionaries(
    st.sampled_from(
        [
            "ansible_host",
            "ansible_port",
            "ansible_user",
            "ansible_ssh_private_key_file",
            "obsplan_root",
            "obsplan_components",
            "obsplan_service_manager",
            "obsplan_bin",
            "obsplan_prometheus",
        ]
    ),
    _PLAUSIBLE | _VALUES,
    max_size=4,
)
_GROUP = st.fixed_dictionaries(
    {},
    optional={
        "hosts": st.one_of(_VALUES, st.dictionaries(st.text(min_size=1, max_size=6), _VARS | _VALUES)),
        "vars": _VARS | _VALUES,
        "children": _VALUES,
    },
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=st.dictionaries(st.sampled_from(["all", "web", "db"]), _GROUP | _VALUES, min_size=1, max_size=3))
def test_fuzzed_ansible_inventories_load_or_refuse(
    doc: dict[str, Any], outcomes: Record, tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("inv") / "a.yml"
    path.write_text(yaml.safe_dump(doc))
    try:
        with no_hang(30):
            inv = load_inventory(path)
    except ObsplanError as exc:
        assert exc.file == str(path)
        outcomes("inventories::fuzzed-ansible", 2, True)
        return
    assert inv.hosts and all(1 <= h.port <= 65535 and isinstance(h.address, str) for h in inv.hosts)
    outcomes("inventories::fuzzed-ansible", 0, True)
