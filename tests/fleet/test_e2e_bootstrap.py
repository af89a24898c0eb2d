"""obsplan brought to hosts that have none (issue 22 item 5), and inventory names that are only labels (issue 18
item 1), on real network-namespace hosts over real SSH.

The hosts share this machine's filesystem view except their own root, so `obsplan` is not on their PATH (sshd's
default PATH) and they have no route off their /24: the test proves both before the rollout. `obsplan bundle
--with-obsplan` builds the wheelhouse once per session from a local wheel cache (filled from the package index
the first time: `OBSPLAN_TEST_WHEELS`, default ~/.cache/obsplan-tests/wheels); `rollout --bootstrap` installs
it on each host with `pip install --no-index` into `<root>/opt/obsplan-venv`, then applies with that obsplan.
Host names `@local` and `@docker/...` (obsplan YAML) and `@local`, `@chroot/...` (Ansible form) are reached over
SSH at their address: nothing runs on the controller, whose view of the hosts' root path stays empty."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import OBSPLAN, ONE_BATCH, Release, events, release_args, rollout, served
from .harness import Fleet, netns_supported, sh, start_fleet

pytestmark = pytest.mark.e2e

OTHER_PYTHON = Path("/root/.pyenv/versions/3.10.13/bin/python3")  # a CPython that cannot take cp311 wheels
PYPI_ADDRESS = "151.101.0.223"  # pypi.org (Fastly): what the hosts must not be able to reach


@pytest.fixture(scope="module")
def two_hosts() -> Iterator[Fleet]:
    if os.geteuid() != 0 or not netns_supported():
        pytest.skip("network namespaces need root (CAP_SYS_ADMIN) and iproute2")
    try:
        fleet = start_fleet(2, quiet_rc=True)  # the hosts run Debian's python3 (3.11.2: no tarfile data filter)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        yield fleet
    finally:
        fleet.close()


def _wheel_cache() -> Path:
    cache = Path(os.environ.get("OBSPLAN_TEST_WHEELS", Path.home() / ".cache" / "obsplan-tests" / "wheels"))
    cache.mkdir(parents=True, exist_ok=True)
    if not any(cache.glob("setuptools-*.whl")) or not any(cache.glob("wheel-*.whl")):  # obsplan's isolated build
        pip = [sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(cache)]
        subprocess.run([*pip, "setuptools>=68", "wheel"], check=True, capture_output=True, timeout=600)
    return cache


def _bundle_with_obsplan(lock: Path, out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    args = [OBSPLAN, "bundle", str(lock), "-o", str(out), "--with-obsplan", "--find-links", str(cache)]
    offline = subprocess.run([*args, "--no-index"], capture_output=True, text=True, timeout=1800, check=False)
    if offline.returncode == 0:
        return offline
    return subprocess.run(args, capture_output=True, text=True, timeout=1800, check=False)  # the index, once


def _plant_stale_obsplan(cache: Path) -> None:
    """A wheel of this very obsplan version in the --find-links cache, as a user's older build of it would be:
    the wheelhouse must carry the wheel built from the running code, never this one (which cannot even start)."""
    from obsplan import __version__

    name, info = f"obsplan-{__version__}-py3-none-any.whl", f"obsplan-{__version__}.dist-info"
    files = {
        "obsplan/__init__.py": "raise SystemExit('a stale obsplan wheel from the cache')\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: obsplan\nVersion: {__version__}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(cache / name, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{info}/RECORD", "".join(f"{p},,\n" for p in [*files, f"{info}/RECORD"]))


@pytest.fixture(scope="session")
def boot_bundle(node_releases: dict[str, Release], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1.5.0 lock's bundle plus a wheelhouse for this interpreter; its wheels go back to the cache."""
    cache = _wheel_cache()
    _plant_stale_obsplan(cache)
    out = tmp_path_factory.mktemp("boot") / "boot.tar"
    proc = _bundle_with_obsplan(node_releases["1.5.0"].lock, out, cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(out) as tar:
        for m in tar.getmembers():
            if (
                m.name.startswith("wheelhouse/")
                and m.name.endswith(".whl")
                and not Path(m.name).name.startswith("obsplan-")  # built from the code under test, every run
                and not (cache / Path(m.name).name).exists()
            ):
                fh = tar.extractfile(m)
                assert fh is not None
                (cache / Path(m.name).name).write_bytes(fh.read())
    return out


def _host_entry(fleet: Fleet, index: int, **extra: object) -> dict:
    return {"address": fleet.hosts[index].address, **extra}


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _defaults(fleet: Fleet) -> dict:
    return {
        "ssh_key": str(fleet.client_key),
        "known_hosts": str(fleet.known_hosts),
        "root": str(fleet.root),
        "service_manager": "supervisord",
        "obsplan": f"{fleet.root}/opt/obsplan-venv/bin/obsplan",  # absent until --bootstrap installs it
    }


def test_bootstrap_installs_obsplan_offline_and_names_never_choose_the_connector(
    two_hosts: Fleet, node_releases: dict[str, Release], boot_bundle: Path, tmp_path: Path
) -> None:
    fleet, rel = two_hosts, node_releases["1.5.0"]
    venv_obsplan = f"{fleet.root}/opt/obsplan-venv/bin/obsplan"  # the inventory names where --bootstrap puts it
    for h in fleet.hosts:  # no obsplan there yet, and no route to the package index
        ns = ("ip", "netns", "exec", h.netns)
        assert sh(*ns, "test", "-e", venv_obsplan, check=False).returncode != 0
        assert sh(*ns, "ip", "route", "get", PYPI_ADDRESS, check=False).returncode != 0
    bare = _write(tmp_path / "bare.yaml", {"defaults": _defaults(fleet), "hosts": {"h": _host_entry(fleet, 0)}})
    refused = rollout(*release_args(rel.lock, bare, rel.bundle), "--bootstrap", "--dry-run", state=tmp_path / "s0")
    assert refused.returncode == 2 and "wheelhouse" in refused.stderr  # a bundle without --with-obsplan

    inv = _write(
        tmp_path / "named.yaml",
        {
            "defaults": _defaults(fleet),
            "hosts": {  # fresh hosts: their components are named (else decided from facts: nothing there yet)
                "@local": _host_entry(fleet, 0, components=["node_exporter"]),
                "@docker/alpine": _host_entry(fleet, 1, components=["node_exporter"]),
            },
        },
    )
    proc = rollout(
        *release_args(rel.lock, inv, boot_bundle), "--bootstrap", *ONE_BATCH, "--json", state=tmp_path / "s1"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {e["host"]: e["status"] for e in events(proc) if e["event"] == "host_result"}
    assert results == {"@local": "ok", "@docker/alpine": "ok"}
    for h in fleet.hosts:
        assert served(h.address) == "1.5.0"
        venv = h.root / "opt" / "obsplan-venv"
        assert (venv / "bin" / "obsplan").is_file() and not (h.root / "opt" / "node_exporter" / "obsplan-venv").exists()
        assert any((h.root / "var" / "lib" / "obsplan" / "wheelhouse").glob("obsplan-*.whl"))
    assert list(fleet.root.iterdir()) == []  # the controller's view of the root path: nothing ran here

    # Ansible form: `@local` is host 1 (its venv obsplan is used as is); `@chroot/x` is host 2 with its venv
    # gone and a Python 3.10, which cannot take cp311 wheels: that host fails, naming its Python.
    shutil.rmtree(fleet.hosts[1].root / "opt" / "obsplan-venv")
    other = OTHER_PYTHON if OTHER_PYTHON.exists() else Path("/nonexistent/python3")
    ansible = {
        "all": {
            "vars": {
                "ansible_ssh_private_key_file": str(fleet.client_key),
                "obsplan_known_hosts": str(fleet.known_hosts),
                "obsplan_root": str(fleet.root),
                "obsplan_service_manager": "supervisord",
                "obsplan_bin": f"{fleet.root}/opt/obsplan-venv/bin/obsplan",
                "obsplan_components": ["node_exporter"],
            },
            "hosts": {
                "@local": {"ansible_host": fleet.hosts[0].address, "ansible_connection": "local"},
                "@chroot/x": {"ansible_host": fleet.hosts[1].address, "ansible_python_interpreter": str(other)},
            },
        }
    }
    inv2 = _write(tmp_path / "ansible.yml", ansible)
    proc = rollout(
        *release_args(rel.lock, inv2, boot_bundle), "--bootstrap", *ONE_BATCH, "--json", state=tmp_path / "s2"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    by_host = {e["host"]: e for e in events(proc) if e["event"] == "host_result"}
    assert by_host["@local"]["status"] == "ok"
    bad = by_host["@chroot/x"]
    assert bad["status"] == "failed" and str(other) in bad["reason"], bad
    if OTHER_PYTHON.exists():
        assert "Python 3.10" in bad["reason"] and "cannot take the wheels" in bad["reason"], bad
    assert not (fleet.hosts[1].root / "opt" / "obsplan-venv" / "bin" / "obsplan").exists()
    assert list(fleet.root.iterdir()) == []


def test_the_wheelhouse_is_verified_like_the_rest_of_the_bundle(boot_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    proc = subprocess.run(
        [OBSPLAN, "bundle", "--extract", str(boot_bundle), "-o", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    index = yaml.safe_load((out / "wheelhouse" / "wheelhouse.json").read_text())
    assert index["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert any(n.startswith("obsplan-") for n in index["wheels"]) and any(n.startswith("pip-") for n in index["wheels"])
    wheel = next((out / "wheelhouse").glob("pydantic_core-*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    (out / "wheelhouse" / "planted.whl").write_bytes(b"x")
    proc = subprocess.run([OBSPLAN, "bundle", "--verify", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert (
        f"altered          wheelhouse/{wheel.name}" in proc.stdout
        and "extra            wheelhouse/planted.whl" in proc.stdout
    )
