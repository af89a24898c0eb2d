"""runtime.listen_address: services bind all interfaces by default (scrapeable), or the address given."""

from __future__ import annotations

from pathlib import Path

import pytest
from obsplan.compiler.config.versions_file import RuntimeSpec
from obsplan.executor.host.layout import Layout
from obsplan.executor.services.managers import service_command

from .conftest import node_runtime


def test_default_binds_all_interfaces_and_probes_loopback(tmp_path: Path) -> None:
    runtime = node_runtime(9100)
    argv = service_command("node_exporter", runtime, "1.9.0", Layout(tmp_path))
    assert "--web.listen-address=:9100" in argv
    assert runtime.probe_host() == "127.0.0.1"


@pytest.mark.parametrize(
    ("address", "flag", "probe"),
    [
        ("10.0.0.11", "--web.listen-address=10.0.0.11:9100", "10.0.0.11"),
        ("::1", "--web.listen-address=[::1]:9100", "::1"),
        ("0.0.0.0", "--web.listen-address=0.0.0.0:9100", "127.0.0.1"),
    ],
)
def test_given_address_is_bound_and_probed(tmp_path: Path, address: str, flag: str, probe: str) -> None:
    runtime = node_runtime(9100).model_copy(update={"listen_address": address})
    assert flag in service_command("node_exporter", runtime, "1.9.0", Layout(tmp_path))
    assert runtime.probe_host() == probe


def test_listen_address_must_be_an_ip() -> None:
    with pytest.raises(ValueError, match="must be an IP address"):
        RuntimeSpec(listen_address="example.org")
