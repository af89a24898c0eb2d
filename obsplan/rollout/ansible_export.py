"""`obsplan export ansible LOCK -o DIR`: a playbook and role doing the rollout's per-host work in Ansible, for
teams that standardise on it: `serial` batches (with `--inventory`: exactly obsplan's batches as host counts; without: the canary, then the
differences between the cumulative percentages, which Ansible rounds per batch),
`max_fail_percentage: 0`, the lock (and optionally a bundle) copied to the host, `obsplan apply --json` with
the exit code checked, and after each batch a gate: `uri` queries to Prometheus' `/api/v1/query` that fail the
play on an empty result or a zero sample (failure limit 0). `$HOSTS` becomes the names and `ansible_host`
addresses of the hosts done so far, dots written `[.]` (no backslash survives Ansible's templating).

Written files: DIR/site.yml and the role DIR/roles/obsplan_apply/{tasks/main.yml, defaults/main.yml,
files/obsplan.lock}. The defaults hold the rollout settings (gates, Prometheus, delays, obsplan_bin,
obsplan_root, obsplan_service_manager, obsplan_mode, obsplan_bundle), the lowest precedence, so inventory and
group variables override them. Deterministic bytes.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import yaml

from obsplan.lockfile import Lock

# As obsplan's own gate (rollout/gates.py): a sample passes only when it is a finite number other than 0
GATE_OK = (
    "gate.json.status == 'success' and (gate.json.data.result | length) > 0 and "
    "(gate.json.data.result | map(attribute='value') | map('last') | map('string') | map('lower') "
    "| select('in', ['nan', 'inf', '+inf', '-inf']) | list | length) == 0 and "
    "(gate.json.data.result | map(attribute='value') | map('last') | map('float') | min) > 0"
)
_DONE = "hostvars['localhost']['obsplan_done']"
HOSTS_REGEX = (
    f"{{{{ ({_DONE} + ({_DONE} | map('extract', hostvars) | map(attribute='ansible_host', default='') "
    "| select | list)) | unique | map('regex_escape') | map('replace', '\"', '\\\\x{22}') "
    "| map('replace', '\\\\', '\\\\\\\\') | join('|') }}"
)


def serial_sizes(canary: int, batches: str) -> list[int | str]:
    """Cumulative targets (10%,50%,100%) → Ansible batch sizes ([canary, '10%', '40%', '50%'])."""
    sizes: list[int | str] = [canary] if canary else []
    prev = 0.0
    for part in (p.strip() for p in batches.split(",") if p.strip()):
        pct = float(part.rstrip("%"))
        if pct > prev:
            sizes.append(f"{math.ceil(pct - prev)}%")
            prev = pct
    return sizes


def _role_tasks(with_bundle: bool) -> list[dict[str, Any]]:
    remote = "{{ obsplan_root | regex_replace('/$', '') }}/var/lib/obsplan/rollout/ansible"
    apply_cmd = [
        "{{ obsplan_bin }}",
        "apply",
        f"{remote}/obsplan.lock",
        "--root",
        "{{ obsplan_root }}",
        "--service-manager",
        "{{ obsplan_service_manager }}",
        "--json",
        "--mode",
        "{{ obsplan_mode }}",
    ]
    if with_bundle:
        apply_cmd += ["--bundle", f"{remote}/bundle.tar"]
    tasks: list[dict[str, Any]] = [
        {
            "name": "obsplan: upload directory",
            "ansible.builtin.file": {"path": remote, "state": "directory", "mode": "0700"},
        },
        {
            "name": "obsplan: upload the lock",
            "ansible.builtin.copy": {"src": "obsplan.lock", "dest": f"{remote}/obsplan.lock", "mode": "0600"},
        },
    ]
    if with_bundle:
        tasks.append(
            {
                "name": "obsplan: upload the bundle",
                "ansible.builtin.copy": {"src": "{{ obsplan_bundle }}", "dest": f"{remote}/bundle.tar", "mode": "0600"},
            }
        )
    tasks.append(
        {
            "name": "obsplan: apply (a failed host has rolled itself back)",
            "ansible.builtin.command": {"argv": apply_cmd},
            "register": "obsplan_apply",
            "changed_when": "'\"step_done\"' in obsplan_apply.stdout",
        }
    )
    return tasks


def _play(serial: list[int | str]) -> list[dict[str, Any]]:
    gate = {
        "name": "obsplan: gate after the batch",
        "run_once": True,
        "delegate_to": "localhost",
        "ansible.builtin.uri": {
            "url": "{{ obsplan_prometheus }}/api/v1/query?query="
            "{{ item.1 | replace('$HOSTS', obsplan_hosts_regex) | urlencode }}",
            "return_content": True,
        },
        "register": "gate",
        "failed_when": f"not ({GATE_OK})",
        "loop": "{{ range(obsplan_gate_count | int) | product(obsplan_gates) | list }}",
        "loop_control": {"pause": "{{ obsplan_gate_interval }}"},
        "vars": {"obsplan_hosts_regex": HOSTS_REGEX},
        "when": "obsplan_gates | length > 0",
    }
    return [
        {
            "name": "obsplan rollout",
            "hosts": "{{ obsplan_hosts | default('all') }}",
            "gather_facts": False,
            "serial": serial,
            "max_fail_percentage": 0,
            "roles": ["obsplan_apply"],
            "post_tasks": [
                {
                    "name": "obsplan: hosts done so far",
                    "run_once": True,
                    "delegate_to": "localhost",
                    "delegate_facts": True,
                    "ansible.builtin.set_fact": {
                        "obsplan_done": f"{{{{ ({_DONE} | default([])) + ansible_play_batch }}}}"
                    },
                },
                {
                    "name": "obsplan: initial delay before measuring",
                    "run_once": True,
                    "ansible.builtin.pause": {"seconds": "{{ obsplan_initial_delay }}"},
                    "when": "obsplan_gates | length > 0",
                },
                gate,
            ],
        }
    ]


def export_ansible(
    lock: Lock,
    lock_path: Path,
    out: Path,
    serial: list[int | str],
    gates: list[str],
    prometheus: str | None,
    soak: float,
    interval: float,
    initial_delay: float,
    bundle: Path | None,
) -> list[Path]:
    role = out / "roles" / "obsplan_apply"
    for d in (role / "tasks", role / "defaults", role / "files"):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lock_path, role / "files" / "obsplan.lock")
    settings = {
        "obsplan_bin": "obsplan",
        "obsplan_root": "/",
        "obsplan_service_manager": "auto",
        "obsplan_mode": "standard",
        "obsplan_prometheus": prometheus or "http://localhost:9090",
        "obsplan_gates": gates,
        "obsplan_gate_interval": interval,
        "obsplan_gate_count": 1 + int(soak // interval) if gates else 0,
        "obsplan_initial_delay": initial_delay,
        "obsplan_bundle": str(bundle) if bundle else None,
    }
    header = f"# obsplan lock {lock.environment} {lock.content_sha256[:12]}: written by `obsplan export ansible`\n"
    files = {
        out / "site.yml": _play(serial),
        role / "tasks" / "main.yml": _role_tasks(bundle is not None),
        role / "defaults" / "main.yml": settings,
    }
    for path, data in files.items():
        path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=200))
    return sorted([*files, role / "files" / "obsplan.lock"])
