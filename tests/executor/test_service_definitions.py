"""Service definitions as data (policies/services.yaml): what each component's definition renders per version,
the files it writes, and a new exporter that needs no Python."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest
from obsplan.compiler.config.catalog import ServicesFile, builtin_definitions, resolve_definition, service_for
from obsplan.compiler.config.model_errors import parse_yaml, validate
from obsplan.compiler.config.versions_file import ComponentSpec
from obsplan.executor.host.layout import Layout
from obsplan.executor.host.probes import normalise_version, parse_version_output
from obsplan.executor.services.managers import render_context
from obsplan.executor.services.service_render import SecretUnreadable, files_current, render_service, write_files
from obsplan.executor.services.supervisord import SupervisordManager
from obsplan.executor.services.systemd import SystemdManager

from obsplan.lock.lockfile import Runtime

from .conftest import catalog_runtime

MYSQL = {"address": "127.0.0.1:3306", "user": "exporter", "password_file": "/etc/obsplan/mysql.pw"}


def _layout(tmp_path: Path, password: str = "pw-1") -> Layout:
    pw = tmp_path / "etc/obsplan/mysql.pw"
    pw.parent.mkdir(parents=True, exist_ok=True)
    pw.write_text(password + "\n")
    return Layout(tmp_path)


def test_nginx_exporter_flag_style_and_metric_per_version(tmp_path: Path) -> None:
    rt = catalog_runtime("nginx_exporter", 9113, scrape_uri="http://127.0.0.1:8080/stub_status")
    old = render_service("nginx_exporter", rt, "0.11.0", Layout(tmp_path)).argv
    new = render_service("nginx_exporter", rt, "1.4.1", Layout(tmp_path)).argv
    assert old[1:] == ["-web.listen-address=:9113", "-nginx.scrape-uri=http://127.0.0.1:8080/stub_status"]
    assert new[1:] == ["--web.listen-address=:9113", "--nginx.scrape-uri=http://127.0.0.1:8080/stub_status"]
    assert rt.build_info_metric_for("0.11.0") == "nginxexporter_build_info"
    assert rt.build_info_metric_for("1.4.1") == "nginx_exporter_build_info"
    plain = catalog_runtime("nginx_exporter", 9113)  # no scrape_uri: the exporter's own default
    assert render_service("nginx_exporter", plain, "1.4.1", Layout(tmp_path)).argv[1:] == ["--web.listen-address=:9113"]


def test_mysqld_exporter_credentials_env_before_0_15_and_my_cnf_after(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    rt = catalog_runtime("mysqld_exporter", 9104, mysql=MYSQL)
    old = render_service("mysqld_exporter", rt, "0.14.0", layout)
    assert old.env == {"DATA_SOURCE_NAME": "exporter:pw-1@tcp(127.0.0.1:3306)/"}
    assert [f.name for f in old.files] == ["environment"] and old.files[0].mode == 0o600
    assert tmp_path / "etc/mysqld_exporter/my.cnf" in old.stale
    new = render_service("mysqld_exporter", rt, "0.17.2", layout)
    assert new.env == {} and new.env_file is None
    (my_cnf,) = new.files
    assert my_cnf.mode == 0o600 and my_cnf.path == tmp_path / "etc/mysqld_exporter/my.cnf"
    assert "[client]\nhost=127.0.0.1\nport=3306\nuser=exporter\npassword=pw-1\n" in my_cnf.content
    assert f"--config.my-cnf={my_cnf.path}" in new.argv
    assert tmp_path / "etc/obsplan/env/mysqld_exporter.env" in new.stale


def test_files_written_0600_owned_by_the_service_user_and_stale_ones_removed(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    nobody = pwd.getpwnam("nobody")
    rt = catalog_runtime("mysqld_exporter", 9104, mysql=MYSQL, user="nobody")
    old = render_service("mysqld_exporter", rt, "0.14.0", layout)
    assert write_files(old, "nobody") == [str(tmp_path / "etc/obsplan/env/mysqld_exporter.env")]
    assert files_current(old, "nobody") and write_files(old, "nobody") == []
    new = render_service("mysqld_exporter", rt, "0.17.2", layout)
    assert not files_current(new, "nobody")  # my.cnf missing, the environment file stale
    write_files(new, "nobody")
    st = (tmp_path / "etc/mysqld_exporter/my.cnf").stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o600, nobody.pw_uid, nobody.pw_gid)
    assert not (tmp_path / "etc/obsplan/env/mysqld_exporter.env").exists()
    _layout(tmp_path, "pw-2")  # a changed password makes the files out of date
    assert not files_current(render_service("mysqld_exporter", rt, "0.17.2", layout), "nobody")
    ctx = render_context("mysqld_exporter", rt, "0.17.2", layout)
    assert "User=nobody" in SystemdManager(layout).render(ctx)
    assert "user=nobody" in SupervisordManager(layout).render(ctx)


def test_missing_password_file_names_it_and_never_the_secret(tmp_path: Path) -> None:
    rt = catalog_runtime("mysqld_exporter", 9104, mysql=MYSQL)
    with pytest.raises(SecretUnreadable) as exc:
        render_service("mysqld_exporter", rt, "0.17.2", Layout(tmp_path))
    assert exc.value.key == "runtime.mysql.password_file" and str(tmp_path / "etc/obsplan/mysql.pw") in str(exc.value)


def test_environment_in_systemd_file_and_supervisord_section(tmp_path: Path) -> None:
    layout = _layout(tmp_path, 'p%"x')
    rt = catalog_runtime("mysqld_exporter", 9104, mysql=MYSQL)
    ctx = render_context("mysqld_exporter", rt, "0.14.0", layout)
    unit = SystemdManager(layout).render(ctx)
    assert f"EnvironmentFile={tmp_path}/etc/obsplan/env/mysqld_exporter.env" in unit and "p%" not in unit
    env_file = next(f for f in render_service("mysqld_exporter", rt, "0.14.0", layout).files)
    assert 'DATA_SOURCE_NAME="exporter:p%\\"x@tcp(127.0.0.1:3306)/"' in env_file.content
    program = SupervisordManager(layout).render(ctx)
    assert "environment=DATA_SOURCE_NAME='exporter:p%%\"x@tcp(127.0.0.1:3306)/'" in program  # % is interpolation


def test_alertmanager_cluster_and_storage(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    plain = render_service("alertmanager", catalog_runtime("alertmanager", 9093), "0.28.1", layout).argv
    assert plain[1:] == [
        "--web.listen-address=:9093",
        "--cluster.listen-address=",
        f"--config.file={tmp_path}/etc/alertmanager/alertmanager.yml",
        f"--storage.path={tmp_path}/var/lib/alertmanager",
    ]
    rt = catalog_runtime(
        "alertmanager",
        9093,
        storage={"retention": "240h"},
        cluster={
            "listen_address": "10.0.0.1:9094",
            "advertise_address": "10.0.0.1:9094",
            "peers": ["10.0.0.2:9094", "10.0.0.3:9094"],
        },
    )
    argv = render_service("alertmanager", rt, "0.28.1", layout).argv
    assert argv[2:5] == [
        "--cluster.listen-address=10.0.0.1:9094",
        "--cluster.advertise-address=10.0.0.1:9094",
        "--cluster.peer=10.0.0.2:9094",
    ]
    assert "--cluster.peer=10.0.0.3:9094" in argv and argv[-1] == "--data.retention=240h"


def test_starter_config_written_once_never_overwritten(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    service = render_service("alertmanager", catalog_runtime("alertmanager", 9093), "0.28.1", layout)
    config = tmp_path / "etc/alertmanager/alertmanager.yml"
    assert write_files(service, None) == [str(config)] and "receiver: blackhole" in config.read_text()
    config.write_text("route: {receiver: mine}\nreceivers: [{name: mine}]\n")
    assert write_files(service, None) == [] and "mine" in config.read_text() and files_current(service, None)


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        (
            "loki",
            "3.7.6",
            [
                "-server.http-listen-address=",
                "-server.http-listen-port=3100",
                "-config.file={root}/etc/loki/config.yml",
            ],
        ),
        (
            "promtail",
            "3.6.11",
            [
                "-server.http-listen-address=",
                "-server.http-listen-port=9080",
                "-config.file={root}/etc/promtail/config.yml",
            ],
        ),
        (
            "grafana",
            "13.2.2",
            [
                "server",
                "--homepath={root}/opt/obsplan/grafana/current",
                "cfg:server.http_addr=",
                "cfg:server.http_port=3000",
                "cfg:paths.data={root}/var/lib/grafana",
            ],
        ),
        ("phpfpm_exporter", "2.2.0", ["server", "--web.listen-address=:9253"]),
        ("fail2ban_exporter", "0.10.1", ["--web.listen-address=:9191"]),
        (
            "prometheus",
            "3.5.0",
            [
                "--web.listen-address=:9090",
                "--config.file={root}/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path={root}/var/lib/prometheus",
            ],
        ),
    ],
)
def test_definitions_without_binaries_render(tmp_path: Path, name: str, version: str, expected: list[str]) -> None:
    rt = catalog_runtime(name, builtin_definitions()[name]["runtime"]["port"])  # type: ignore[index]
    argv = render_service(name, rt, version, Layout(tmp_path)).argv
    assert argv == [str(tmp_path / "usr/local/bin" / rt.service_binary)] + [e.format(root=tmp_path) for e in expected]


def test_every_builtin_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    layout = _layout(tmp_path)
    settings = {"mysqld_exporter": {"mysql": MYSQL}, "nginx_exporter": {"scrape_uri": "http://127.0.0.1:8080/x"}}
    for name, defn in sorted(builtin_definitions().items()):
        rt = catalog_runtime(name, defn["runtime"]["port"], **settings.get(name, {}))  # type: ignore[index]
        (layout.bin_dir / rt.service_binary).parent.mkdir(parents=True, exist_ok=True)
        (layout.bin_dir / rt.service_binary).write_text("#!/bin/sh\n")
        (layout.bin_dir / rt.service_binary).chmod(0o755)
        for version in ("0.1.0", "99.0.0"):  # before and after every version-conditional difference
            unit = tmp_path / f"{name}.service"
            unit.write_text(SystemdManager(layout).render(render_context(name, rt, version, layout)))
            proc = subprocess.run(
                ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
            )
            problems = [line for line in proc.stderr.splitlines() if unit.name in line]
            assert proc.returncode == 0 or not problems, (name, version, proc.stderr)
            unit.unlink()


def test_custom_exporter_needs_only_data(tmp_path: Path) -> None:
    """A GitHub-released exporter from versions.yaml alone runs with the ordinary exporter flags."""
    spec = ComponentSpec(
        github_repo="prometheus/blackbox_exporter",
        artifact="blackbox_exporter-{version}.{os}-{arch}.tar.gz",
        runtime={"port": 9115},
    )
    defn = resolve_definition("blackbox_exporter", spec, builtin_definitions(), "versions.yaml")
    argv = render_service("blackbox_exporter", defn.runtime, "0.25.0", Layout(tmp_path)).argv
    assert argv == [str(tmp_path / "usr/local/bin/blackbox_exporter"), "--web.listen-address=:9115"]
    (tmp_path / "etc/blackbox_exporter").mkdir(parents=True)
    (tmp_path / "etc/blackbox_exporter/web.yml").write_text("{}\n")
    argv = render_service("blackbox_exporter", defn.runtime, "0.25.0", Layout(tmp_path)).argv
    assert argv[-1] == f"--web.config.file={tmp_path}/etc/blackbox_exporter/web.yml"
    assert defn.runtime.build_info_metric_for("0.25.0") == "blackbox_exporter_build_info"


def test_a_new_definition_with_version_differences_is_data_only(tmp_path: Path) -> None:
    text = """
defaults: {argv: ["{{ binary }}"]}
services:
  snmp_exporter:
    argv: ["{{ binary }}", "--web.listen-address={{ listen }}", "--config.file={{ config_file }}"]
    build_info_metric: snmp_exporter_old_build_info
    versions:
      - from: "0.26.0"
        argv: ["{{ binary }}", "--web.listen-address={{ listen }}", "--config.file={{ files.snmp }}"]
        build_info_metric: snmp_exporter_build_info
        files: [{name: snmp, path: "/etc/{{ component }}/snmp.yml", content: "auths: {}\\n", mode: "0640"}]
"""
    services = validate(ServicesFile, parse_yaml(text, "services.yaml"), "services.yaml")
    rt = Runtime(
        binaries={"snmp_exporter": "*/snmp_exporter"},
        service_binary="snmp_exporter",
        port=9116,
        health_path="/metrics",
        config_file="/etc/snmp/old.yml",
        service=services.services["snmp_exporter"],
    )
    layout = Layout(tmp_path)
    old = render_service("snmp_exporter", rt, "0.25.0", layout)
    assert old.argv[-1] == f"--config.file={tmp_path}/etc/snmp/old.yml" and old.files == []
    new = render_service("snmp_exporter", rt, "0.26.0", layout)
    assert new.argv[-1] == f"--config.file={tmp_path}/etc/snmp_exporter/snmp.yml" and new.files[0].mode == 0o640
    assert rt.build_info_metric_for("0.25.0") == "snmp_exporter_old_build_info"
    assert rt.build_info_metric_for("0.26.0") == "snmp_exporter_build_info"


def test_bad_definition_is_refused() -> None:
    from obsplan.kernel.errors import ObsplanError

    text = "defaults: {argv: []}\nservices:\n  x: {argv: [], requires: [mysql]}\n"
    with pytest.raises(ObsplanError, match="services.x: requires"):
        validate(ServicesFile, parse_yaml(text, "services.yaml"), "services.yaml")
    text = "defaults: {argv: []}\nservices:\n  x: {argv: [], files: [{name: a, path: /a, content: '', mode: 600}]}\n"
    with pytest.raises(ObsplanError, match="mode"):
        validate(ServicesFile, parse_yaml(text, "services.yaml"), "services.yaml")


def test_debian_versions_normalised_and_version_read_per_definition() -> None:
    assert normalise_version("0.28.1+ds") == "0.28.1"
    assert normalise_version("0.11.0-1+b4") == "0.11.0"
    assert normalise_version("2.42.0+ds-5+deb12u1") == "2.42.0"
    assert normalise_version("3.0.0-rc.0") == "3.0.0-rc.0"
    line = "NGINX Prometheus Exporter version=0.11.0-1+b4 commit= date=, dirty=false, arch=linux/amd64, go=go1.19.8"
    patterns = service_for("nginx_exporter").version_patterns
    assert parse_version_output(line, "") is None
    info = parse_version_output(line, "", patterns)
    assert info is not None and info.version == "0.11.0"


def test_shipped_definitions_cover_the_catalog() -> None:
    from obsplan.compiler.config.catalog import service_definitions

    assert set(service_definitions().services) <= set(builtin_definitions())
    # a lock without a definition (written before they existed) runs as the shipped defaults say
    from obsplan.lock.service_def import ServiceDef

    assert service_definitions().defaults == ServiceDef.generic()
    assert os.path.basename(service_for("fail2ban_exporter").if_exists["web_config"]) == "web.yml"  # defaults


def test_apply_without_the_password_file_fails_before_touching_the_host(tmp_path: Path) -> None:
    if shutil.which("supervisord") is None:
        pytest.skip("supervisord not installed")
    import obsplan.executor.apply.engine as engine
    from obsplan.executor.reporters import RecordingReporter

    from .conftest import Hop, build_lock, shutdown_supervisord

    rt = catalog_runtime("mysqld_exporter", 9104, mysql=MYSQL)
    h = Hop(None, "0.17.2", "http://127.0.0.1:9/mysqld_exporter-0.17.2.linux-amd64.tar.gz", "ab" * 32)
    lock = build_lock(tmp_path / "lock.json", {"mysqld_exporter": (rt, "exporters", [h])})
    root = tmp_path / "root"
    try:
        report = engine.apply(lock, engine.ApplyOptions(root=root), RecordingReporter())
    finally:
        shutdown_supervisord(root)
    (result,) = report.results
    assert (report.exit_code, result.reason) == (1, "service_definition")
    assert f"cannot read {root}/etc/obsplan/mysql.pw" in result.detail["error"]
    assert "runtime.mysql.password_file" in result.detail["error"]
    assert not (root / "opt").exists() and not (root / "var/cache").exists()


def test_unknown_service_user_is_named(tmp_path: Path) -> None:
    from obsplan.kernel.errors import ObsplanError

    rt = catalog_runtime("node_exporter", 9100, user="obsplan-no-such-user")
    service = render_service("node_exporter", rt, "1.9.0", Layout(tmp_path))
    with pytest.raises(ObsplanError, match="service user 'obsplan-no-such-user' does not exist"):
        files_current(service, rt.user)
