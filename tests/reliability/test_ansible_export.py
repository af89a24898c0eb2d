"""`obsplan export ansible`: every value obsplan writes is data (issue 18, item 4), and the tree is written
never through a link planted in DIR and never outside it (item 5).

Item 4 is shown with Ansible itself: the role defaults loaded as Ansible loads them (trusted as templates) and
rendered through the role's own expressions stay literal, whatever Jinja they hold (hypothesis); and one real
`ansible-playbook` run on localhost with a gate, a Prometheus URL and a bundle path carrying
`{{ lookup('pipe', ...) }}`: nothing runs, Prometheus receives the gate's literal text, the bundle arrives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obsplan.lock.lockfile import load_lock
from obsplan.rollout.ansible_export import export_ansible
from tests.reliability.conftest import FUZZ_EXAMPLES, Record
from tests.reliability.corpus import good_lock, one_error_line, reseal, run, tree

ansible = pytest.importorskip("ansible")


def pipe(marker: Path) -> str:
    return f"{{{{ lookup('pipe', 'mkdir {marker}') }}}}"


@pytest.fixture(scope="module")
def lock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("ansible-export")
    path = work / "a.lock"
    path.write_bytes(reseal(good_lock(work / "compile")))
    return path


def export(lock_file: Path, out: Path, gates: list[str], prometheus: str | None, bundle: Path | None) -> list[Path]:
    return export_ansible(load_lock(lock_file), lock_file, out, [1], gates, prometheus, 0.0, 1.0, 0.0, bundle)


def rendered(out: Path) -> dict[str, Any]:
    """The defaults as the role's own expressions see them, rendered by Ansible's templar."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    loader = DataLoader()
    defaults = loader.load_from_file(str(out / "roles/obsplan_apply/defaults/main.yml"), trusted_as_template=True)
    templar = Templar(loader=loader, variables={**defaults, "item": [0, *defaults["obsplan_gates"][:1]]})

    def render(expr: str) -> Any:
        return templar.template(trust_as_template(expr))

    return {
        "defaults": {k: render(f"{{{{ {k} }}}}") for k in defaults},
        "gate": render("{{ item.1 | default('') | replace('$HOSTS', 'h1') }}"),
        "url": render("{{ obsplan_prometheus }}/api/v1/query"),
        "bundle": render("{{ obsplan_bundle }}"),
    }


ODD = [
    "",
    "1",
    "true",
    "null",
    "~",
    "2026-01-01",
    "<<",
    "=",
    "0x1f",
    "1.5e3",
    "a\nb {{ 1 }}",
    "\t{{x}}\x85\u2028",
    "'\"",
]
JINJA = st.one_of(
    st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "{{ 7*7 }}", "{% if true %}x{% endif %}", "$HOSTS", "'", '"']),
    st.sampled_from(ODD),
    st.text(alphabet="{}%#'\"|() abc$:/._-", max_size=12),
)
VALUES = st.lists(JINJA, min_size=1, max_size=6).map("".join)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(gate=VALUES, prom=VALUES, bundle=VALUES.map(lambda s: s.replace("/", "_") or "b"))
def test_fuzz_values_stay_literal(outcomes: Record, lock_file: Path, gate: str, prom: str, bundle: str) -> None:
    with tempfile.TemporaryDirectory(prefix="obsplan-ansible-fuzz-") as tmp:
        marker = Path(tmp) / "pwned"
        gate_v, prom_v = f"{gate}{pipe(marker)}", f"http://127.0.0.1:9/{prom}{pipe(marker)}"
        bundle_v = Path(tmp) / f"{bundle}{pipe(marker).replace('/', '_')}"
        export(lock_file, Path(tmp) / "out", [gate_v, "up"], prom_v, bundle_v)
        seen = rendered(Path(tmp) / "out")
        ok = (
            not marker.exists()
            and seen["defaults"]["obsplan_gates"] == [gate_v, "up"]
            and seen["gate"] == gate_v.replace("$HOSTS", "h1")
            and seen["url"] == f"{prom_v}/api/v1/query"
            and seen["bundle"] == str(bundle_v)
        )
    outcomes("export ansible: generated Jinja values", 0 if ok else 1, ok)
    assert ok, (gate_v, prom_v, bundle_v, seen)


def test_values_keep_their_text_whatever_yaml_would_make_of_them(lock_file: Path, tmp_path: Path) -> None:
    """Ansible re-resolves an `!unsafe` scalar's type: a value that reads as a number, a boolean, null or a date
    is written quoted (it can hold no Jinja), every value holding a Jinja delimiter is tagged `!unsafe`, and each
    comes back from Ansible as the same string."""
    export(lock_file, tmp_path / "out", ODD, "http://127.0.0.1:9/{{ 7*7 }}", tmp_path / "{% raw %}x")
    node = yaml.compose((tmp_path / "out/roles/obsplan_apply/defaults/main.yml").read_text())
    assert isinstance(node, yaml.MappingNode)
    scalars = [v for _, v in node.value if isinstance(v, yaml.ScalarNode)]
    scalars += [item for _, v in node.value if isinstance(v, yaml.SequenceNode) for item in v.value]
    assert all(n.tag == "!unsafe" for n in scalars if "{" in n.value or "%" in n.value)
    assert sum(n.tag == "!unsafe" for n in scalars) >= 8
    seen = rendered(tmp_path / "out")
    assert seen["defaults"]["obsplan_gates"] == ODD
    assert seen["url"] == "http://127.0.0.1:9/{{ 7*7 }}/api/v1/query" and seen["bundle"] == str(tmp_path / "{% raw %}x")


class PromHandler(BaseHTTPRequestHandler):
    queries: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        parts = urlsplit(self.path)
        self.queries.append(unquote(parts.path) + " " + parse_qs(parts.query).get("query", [""])[0])
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"value": [0, "1"]}]}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[str, list[str]]]:
    handler: type[PromHandler] = type("H", (PromHandler,), {"queries": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.queries
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_real_playbook_run_never_templates_obsplan_values(
    lock_file: Path, prometheus: tuple[str, list[str]], tmp_path: Path
) -> None:
    """The exported playbook, run by ansible-playbook against localhost: the apply command is /bin/true, the gate
    asks a local Prometheus. The gate, the Prometheus URL and the bundle path each carry a pipe lookup."""
    if shutil.which("ansible-playbook") is None:
        pytest.skip("needs ansible-playbook")
    url, queries = prometheus
    markers = {k: tmp_path / f"pwned-{k}" for k in ("gate", "prom", "bundle")}
    gate = f'up{{job="{pipe(markers["gate"])}"}} and on() vector($HOSTS)'
    prom = f"{url}/p{{{{lookup('pipe','mkdir${{IFS}}{markers['prom']}')}}}}"
    bundle = tmp_path / f"b-{pipe(markers['bundle']).replace('/', '_')}.tar"
    bundle.write_bytes(b"bundle bytes\n")
    out = tmp_path / "out"
    export(lock_file, out, [gate], prom, bundle)
    root = tmp_path / "root"
    inventory = tmp_path / "hosts.yml"
    host = {
        "ansible_connection": "local",
        "ansible_host": "127.0.0.1",
        "ansible_python_interpreter": sys.executable,
        "obsplan_bin": "/bin/true",  # apply "succeeds"; no facts to read, so the components are named
        "obsplan_root": str(root),
        "obsplan_components": sorted(load_lock(lock_file).components)[:1],
    }
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "atmp")}
    env["ANSIBLE_REMOTE_TMP"] = str(tmp_path / "rtmp")
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(out / "site.yml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert not any(m.exists() for m in markers.values())
    literal_path = prom.removeprefix(url) + "/api/v1/query"
    assert queries[-1] == literal_path + " " + gate.replace("$HOSTS", "localhost|127\\\\.0\\\\.0\\\\.1")
    uploaded = root / "var/lib/obsplan/rollout/ansible"
    assert (uploaded / "bundle.tar").read_bytes() == b"bundle bytes\n"
    assert (uploaded / "obsplan.lock").read_bytes() == lock_file.read_bytes()


# ---- item 5: links planted in DIR ------------------------------------------------------------------------

FILES = ["site.yml", "roles/obsplan_apply/tasks/main.yml", "roles/obsplan_apply/defaults/main.yml"]
FILES += ["roles/obsplan_apply/files/obsplan.lock"]
DIRS = ["roles", "roles/obsplan_apply", "roles/obsplan_apply/tasks", "roles/obsplan_apply/files"]


def export_cli(lock_file: Path, out: Path, cwd: Path) -> Any:
    return run(["export", "ansible", str(lock_file), "-o", str(out), "--gate", "up"], cwd)


@pytest.mark.parametrize("planted", FILES)
def test_a_file_link_is_replaced_never_written_through(lock_file: Path, tmp_path: Path, planted: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious\n")
    out = tmp_path / "out"
    (out / planted).parent.mkdir(parents=True)
    (out / planted).symlink_to(outside / "victim")
    dangling = tmp_path / "out" / "dangling-target"
    before = tree(outside)
    result = export_cli(lock_file, out, tmp_path)
    assert result.exit_code == 0, result.output
    assert tree(outside) == before and not dangling.exists()
    assert all((out / f).is_file() and not (out / f).is_symlink() for f in FILES)


@pytest.mark.parametrize("planted", DIRS)
@pytest.mark.parametrize("target", ["dir", "dangling"])
def test_a_directory_link_is_refused_naming_it(lock_file: Path, tmp_path: Path, planted: str, target: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    (out / planted).parent.mkdir(parents=True, exist_ok=True)
    (out / planted).symlink_to(outside if target == "dir" else tmp_path / "nowhere")
    result = export_cli(lock_file, out, tmp_path)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"{out / planted}: is a symbolic link" in line
    assert tree(outside) == {} and not (tmp_path / "nowhere").exists()


TREE_SPOTS = st.sampled_from([*FILES, *DIRS, "roles/obsplan_apply/defaults"])


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(spots=st.lists(TREE_SPOTS, min_size=1, max_size=4, unique=True), kinds=st.data())
def test_fuzz_planted_links(outcomes: Record, lock_file: Path, spots: list[str], kinds: st.DataObject) -> None:
    """Links (to a file, a directory, nowhere) planted anywhere in DIR: never a change outside DIR."""
    with tempfile.TemporaryDirectory(prefix="obsplan-ansible-links-") as tmp:
        base = Path(tmp)
        outside = base / "outside"
        outside.mkdir()
        (outside / "victim").write_text("precious\n")
        (outside / "sub").mkdir()
        (outside / "sub" / "site.yml").write_text("theirs\n")
        out = base / "out"
        out.mkdir()
        for spot in sorted(spots, key=len):
            target = kinds.draw(st.sampled_from(["victim", ".", "nowhere", "sub"]), label=spot)
            where = out / spot
            above = [out.joinpath(*Path(spot).parts[:i]) for i in range(1, len(Path(spot).parts))]
            if where.exists() or where.is_symlink() or any(a.is_symlink() or a.is_file() for a in above):
                continue
            where.parent.mkdir(parents=True, exist_ok=True)
            where.symlink_to(outside / target)
        before = tree(outside)
        result = export_cli(lock_file, out, base)
        ok = result.exit_code in (0, 2) and tree(outside) == before and not (outside / "nowhere").exists()
        if result.exit_code == 0:
            ok = ok and all((out / f).is_file() and not (out / f).is_symlink() for f in FILES)
    outcomes("export ansible: planted links", result.exit_code, ok)
    assert ok, (spots, result.output)
