"""`liveboard stack up|status|down` as a user runs it: real processes, real ports, real refusals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from deploy.embedded.processes import pid_alive
from liveboard.clickhouse.client import get_client
from liveboard.settings import Settings
from tests.support import settings_env, stack_settings, wait_until

pytestmark = pytest.mark.engines  # starts its own embedded stacks

LIVEBOARD = [sys.executable, "-m", "liveboard"]


def run(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([*LIVEBOARD, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def own_stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = stack_settings(tmp_path / "home")
    yield s
    run(s, "stack", "down")


def _status(s: Settings) -> dict:
    r = run(s, "stack", "status", "--json")
    return {c["name"]: c for c in json.loads(r.stdout)}


def test_up_status_down_leaves_nothing_behind(own_stack: Settings) -> None:
    r = run(own_stack, "stack", "up")
    assert r.returncode == 0, r.stderr
    st = _status(own_stack)
    assert st["broker"]["running"] and st["clickhouse"]["running"]
    assert st["broker"]["address"] == f"127.0.0.1:{own_stack.broker_port}"
    assert st["broker"]["version"] == "tansu 0.6.0"
    assert st["clickhouse"]["version"].startswith("26.9")
    assert st["clickhouse"]["data_dir"] == str(own_stack.home / "clickhouse" / "data")
    assert st["broker"]["uptime_s"] >= 0 and st["clickhouse"]["rss_bytes"] > 10_000_000
    pids = [st["broker"]["pid"], st["clickhouse"]["pid"]]

    r = run(own_stack, "stack", "down")
    assert r.returncode == 0 and "stopped" in r.stdout
    assert wait_until(lambda: not any(pid_alive(p) for p in pids), 10), pids
    r = run(own_stack, "stack", "status", "--json")
    assert r.returncode == 3
    assert not any(c["running"] for c in json.loads(r.stdout))


def test_second_up_on_same_home_is_refused(own_stack: Settings) -> None:
    assert run(own_stack, "stack", "up").returncode == 0
    r = run(own_stack, "stack", "up")
    assert r.returncode != 0
    assert f"already running in {own_stack.home}" in r.stderr


def test_busy_port_is_refused_with_its_number(own_stack: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", own_stack.clickhouse_port))
        s.listen()
        r = run(own_stack, "stack", "up")
    assert r.returncode != 0
    assert f"port {own_stack.clickhouse_port} on 127.0.0.1 is busy" in r.stderr
    assert "clickhouse" in r.stderr
    # Nothing was left running by the refused start.
    assert not (own_stack.home / "broker" / "broker.pid").exists()


def test_stale_pid_file_is_recovered(own_stack: Settings) -> None:
    pidfile = own_stack.home / "broker" / "broker.pid"
    pidfile.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile.write_text(str(dead.pid))  # a pid that no longer runs
    r = run(own_stack, "stack", "up")
    assert r.returncode == 0, r.stderr
    assert "removed stale pid file" in r.stderr
    assert _status(own_stack)["broker"]["running"]


def test_clickhouse_data_survives_restart(own_stack: Settings) -> None:
    assert run(own_stack, "stack", "up").returncode == 0
    assert run(own_stack, "db", "migrate").returncode == 0
    c = get_client(own_stack)
    c.insert("stack_heartbeats", [["test", 42, "before restart"]], column_names=["component", "at_ms", "note"])
    c.close()
    assert run(own_stack, "stack", "down").returncode == 0
    assert run(own_stack, "stack", "up").returncode == 0
    r = run(own_stack, "db", "migrate")
    assert "0 applied" in r.stdout
    c = get_client(own_stack)
    try:
        assert c.query("SELECT note FROM stack_heartbeats WHERE at_ms = 42").result_rows == [("before restart",)]
    finally:
        c.close()


def test_unsupported_platform_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    from liveboard.cli import cli
    from liveboard.settings import reload_settings

    s = stack_settings(tmp_path / "home")
    for k, v in settings_env(s).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    reload_settings()
    try:
        result = CliRunner().invoke(cli, ["stack", "up"])
    finally:
        monkeypatch.undo()
        reload_settings()
    assert result.exit_code != 0
    assert "exists only for Linux x86_64, not Linux aarch64" in str(result.exception)
    assert not (s.home / "broker" / "broker.pid").exists()
