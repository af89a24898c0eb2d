"""`obsplan export ansible`: the exported playbook upgrades the same network-namespace hosts with ansible-core
(serial batches, the uri gate against the real Prometheus), and the Ansible inventory it runs with is read as
is by `obsplan rollout`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import OBSPLAN, Prometheus, Release, install_base, rollout, served
from .harness import Fleet

pytestmark = pytest.mark.e2e


def _ansible_inventory(fleet: Fleet, path: Path, bundle: Path, prometheus: str) -> Path:
    common = f"-o UserKnownHostsFile={fleet.known_hosts} -o StrictHostKeyChecking=yes -o BatchMode=yes"
    data = {
        "all": {
            "children": {"web": {"hosts": {h.name: {"ansible_host": h.address} for h in fleet.hosts}}},
            # host4 names its components: none of the lock's (the others: what their facts show they run)
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(fleet.client_key),
                "ansible_ssh_common_args": common,
                "ansible_python_interpreter": "/usr/bin/python3",
                "obsplan_bin": OBSPLAN,
                "obsplan_root": str(fleet.root),
                "obsplan_service_manager": "supervisord",
                "obsplan_mode": "fast",
                "obsplan_bundle": str(bundle),
                "obsplan_known_hosts": str(fleet.known_hosts),
                "obsplan_prometheus": prometheus,
            },
        }
    }
    data["all"]["children"]["web"]["hosts"]["host4"]["obsplan_components"] = []
    path.write_text(yaml.safe_dump(data))
    return path


def test_exported_playbook_upgrades_the_fleet(
    fleet: Fleet, node_releases: dict[str, Release], prometheus: Prometheus, tmp_path: Path
) -> None:
    if shutil.which("ansible-playbook") is None:
        pytest.skip("needs ansible-core")
    install_base(fleet, node_releases["1.5.0"], tmp_path)
    prometheus.wait_up(4)
    rel = node_releases["1.9.0"]
    out = tmp_path / "ansible"
    inv = _ansible_inventory(fleet, tmp_path / "ansible-hosts.yml", rel.bundle, prometheus.url)
    gate = 'min_over_time(up{instance=~"($HOSTS):9100"}[2s])'
    proc = subprocess.run(
        [
            OBSPLAN,
            "export",
            "ansible",
            str(rel.lock),
            "-o",
            str(out),
            "--gate",
            gate,
            "--soak",
            "1",
            "--interval",
            "1",
            "--initial-delay",
            "3",
            "--bundle",
            str(rel.bundle),
            "--inventory",
            str(inv),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "site.yml" in " ".join(json.loads(proc.stdout)["files"])
    assert yaml.safe_load((out / "site.yml").read_text())[0]["serial"] == [1, 1, 2]  # obsplan's batches

    dry = rollout(str(rel.lock), "--inventory", str(inv), "--dry-run", "--json", state=tmp_path / "state")
    assert dry.returncode == 0, dry.stderr  # the same Ansible inventory, read as is by obsplan
    planned = json.loads(dry.stdout.splitlines()[0])
    assert planned["prometheus"] == prometheus.url and len(planned["hosts"]) == 4

    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "atmp"),
        "ANSIBLE_REMOTE_TMP": "/tmp/.ansible-obsplan-test",
        "ANSIBLE_NOCOLOR": "1",
    }
    play = subprocess.run(
        ["ansible-playbook", "-i", str(inv), str(out / "site.yml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr[-2000:]
    assert play.stdout.count("TASK [obsplan: gate after the batch]") == 3  # after each of the three batches
    assert [served(h.address) for h in fleet.hosts] == ["1.9.0"] * 3 + ["1.5.0"]  # host4: obsplan_components: []
