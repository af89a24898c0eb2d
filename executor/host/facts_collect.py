"""`obsplan facts`: what this host runs, per component (installed, linked and served version, and how each
was observed), as the JSON `obsplan plan --facts` reads (`obsplan.lock.hostfacts.HostFacts`). Read-only.

Components are those of a lock, or the built-in catalog (`policies/components.yaml`, read as data: the
executor imports nothing of the compiler but the lock)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import httpx
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import healthy, host_platform, probe_binary_version, served_build_info
from obsplan.executor.reporters import now_iso

import obsplan.safeio.yamlload as yamlload
from obsplan import __version__
from obsplan.kernel.versions import version_or_none
from obsplan.lock.hostfacts import ComponentFacts, HostFacts, Observed
from obsplan.lock.lockfile import Lock, Runtime


def catalog_runtimes() -> dict[str, Runtime]:
    """The runtime of every built-in component, from the shipped catalog."""
    text = resources.files("obsplan.policies").joinpath("components.yaml").read_text()
    data = yamlload.load(text, "policies/components.yaml")
    return {name: Runtime.model_validate(entry["runtime"]) for name, entry in sorted(data["components"].items())}


def lock_runtimes(lock: Lock) -> dict[str, Runtime]:
    return {name: comp.runtime for name, comp in sorted(lock.components.items())}


def find_binary(runtime: Runtime, layout: Layout) -> Path | None:
    """The component's binary: `/usr/local/bin/<name>` under the root, else (root `/` only) on PATH."""
    exposed = layout.bin_dir / runtime.service_binary
    if exposed.exists():
        return exposed
    if layout.root == Path("/"):
        found = shutil.which(runtime.service_binary)
        return Path(found) if found else None
    return None


def _valid(version: str | None) -> str | None:
    return version if version_or_none(version) is not None else None


def served(runtime: Runtime, layout: Layout, client: httpx.Client) -> tuple[str | None, str]:
    """(version the service on the component's port serves, how it was observed)."""
    host, port = runtime.probe_host(), runtime.port
    if runtime.build_info_metric:
        v = served_build_info(client, port, runtime.build_info_metric, host=host)
        if v is not None:
            return _valid(v), f"{runtime.build_info_metric} on http://{host}:{port}/metrics"
    elif healthy(client, port, runtime.health_path, host=host):
        binary = find_binary(runtime, layout)
        if binary is not None:
            v = probe_binary_version(binary, runtime.version_args)
            return _valid(v), f"{runtime.health_path} healthy on {host}:{port}; version from {binary} --version"
    return None, f"no {runtime.build_info_metric or runtime.health_path} answer on {host}:{port}"


def component_facts(name: str, runtime: Runtime, layout: Layout, client: httpx.Client) -> ComponentFacts:
    linked = layout.current_version(name)
    binary = find_binary(runtime, layout)
    installed = _valid(probe_binary_version(binary, runtime.version_args)) if binary is not None else None
    served_v, served_how = served(runtime, layout, client)
    observed = Observed(
        installed=f"{binary} {' '.join(runtime.version_args)}" if binary else f"no {runtime.service_binary} binary",
        linked=f"symlink {layout.current_link(name)}" if linked else "no obsplan current link",
        served=served_how,
    )
    return ComponentFacts(
        installed=installed, linked=_valid(linked), served=served_v, observed=observed, managed=linked is not None
    )


def collect(root: Path, lock: Lock | None = None, client: httpx.Client | None = None) -> HostFacts:
    layout = Layout(root.resolve())
    runtimes = lock_runtimes(lock) if lock is not None else catalog_runtimes()
    own = client is None
    client = client or httpx.Client(timeout=3.0, trust_env=False)
    try:
        comps = {name: component_facts(name, rt, layout, client) for name, rt in runtimes.items()}
    finally:
        if own:
            client.close()
    return HostFacts(
        format=1,
        obsplan_version=__version__,
        platform=host_platform(),
        root=str(layout.root),
        collected_at=now_iso(),
        components=comps,
    )
