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

Every value obsplan writes is data: each string in the defaults is tagged `!unsafe` (Ansible's own mechanism),
so a gate, a Prometheus URL or a bundle path holding `{{ ... }}` reaches the host or Prometheus as those
characters and is never templated. Only the role's own expressions (site.yml, tasks/main.yml, written by obsplan
from constants) are templates. The tree is written by `safe_tree.write_tree`: never through a link planted in
DIR, never outside it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from obsplan.lock.lockfile import Lock
from obsplan.safeio.safe_tree import write_tree

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
    "| select | list)) | unique | map('regex_escape') | map('regex_replace', '[\\\\\\\\]', '\\\\\\\\') "
    "| map('replace', '\"', '\\\\x{22}') | join('|') }}"
)


class Unsafe(str):
    """A string Ansible must never template: dumped as `!unsafe '...'`."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_unsafe(dumper: yaml.SafeDumper, value: Unsafe) -> yaml.Node:
    """`!unsafe '...'`; a string YAML would read back as another type (`''`, `1`, `null`, `true`, a date) is
    written quoted instead: Ansible re-resolves an `!unsafe` scalar's type, and such a string holds no Jinja."""
    if dumper.resolve(yaml.ScalarNode, str(value), (True, False)) != "tag:yaml.org,2002:str":
        return dumper.represent_str(str(value))
    return dumper.represent_scalar("!unsafe", str(value), style="'")


_Dumper.add_representer(Unsafe, _represent_unsafe)


def as_data(value: Any) -> Any:
    """`value` with every string in it (list items included) tagged `!unsafe`."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, list):
        return [as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: as_data(v) for k, v in value.items()}
    return value


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=False)


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
    tasks += _component_tasks(remote, apply_cmd)
    return tasks


HAS = (
    "(obsplan_facts.stdout | from_json).components[item] | default({}) | dict2items "
    "| selectattr('key', 'in', ['installed', 'linked', 'served']) | selectattr('value') | list | length > 0"
)


def _component_tasks(remote: str, apply_cmd: list[str]) -> list[dict[str, Any]]:
    """Per host only the lock's components it runs: `obsplan_components` when the inventory names them (new
    components only this way), else those `obsplan facts` finds installed, linked or served there."""
    facts = ["{{ obsplan_bin }}", "facts", "--root", "{{ obsplan_root }}", "--lock", f"{remote}/obsplan.lock"]
    return [
        {
            "name": "obsplan: what this host runs (when the inventory does not name its components)",
            "ansible.builtin.command": {"argv": facts},
            "register": "obsplan_facts",
            "changed_when": False,
            "when": "obsplan_components is not defined",
        },
        {
            "name": "obsplan: apply, per component (a failed host has rolled itself back)",
            "ansible.builtin.command": {"argv": [*apply_cmd, "--component", "{{ item }}"]},
            "loop": "{{ obsplan_lock_components }}",
            "when": f"(item in obsplan_components) if obsplan_components is defined else ({HAS})",
            "register": "obsplan_apply",
            "changed_when": "'\"step_done\"' in obsplan_apply.stdout",
        },
    ]


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
        "obsplan_lock_components": list(
            dict.fromkeys([s.component for s in lock.plan.steps] + sorted(lock.components))
        ),
    }
    header = f"# obsplan lock {lock.environment} {lock.content_sha256[:12]}: written by `obsplan export ansible`\n"
    role = "roles/obsplan_apply"
    files = {
        "site.yml": (header + dump(_play(serial))).encode(),
        f"{role}/tasks/main.yml": (header + dump(_role_tasks(bundle is not None))).encode(),
        f"{role}/defaults/main.yml": (header + dump(as_data(settings))).encode(),
        f"{role}/files/obsplan.lock": lock_path.read_bytes(),
    }
    return write_tree(out, files)
