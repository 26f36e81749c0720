"""The CLI answers a bad setting or an engine that does not answer with one line naming it, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from deploy.embedded.processes import free_port

LIVEBOARD = [sys.executable, "-m", "liveboard"]


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "LIVEBOARD_CLICKHOUSE_PORT": str(free_port()), "LIVEBOARD_BROKER_PORT": str(free_port())}
    full.pop("LIVEBOARD_KAFKA_BOOTSTRAP", None)
    full.pop("LIVEBOARD_CLICKHOUSE_URL", None)
    full.update(env)
    return subprocess.run([*LIVEBOARD, *args], env=full, capture_output=True, text=True, timeout=120)


def test_a_bad_setting_names_the_field_and_the_value() -> None:
    r = run("stack", "status", LIVEBOARD_BROKER_PORT="x")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "broker_port" in r.stderr and "'x'" in r.stderr, r.stderr
    r = run("board", "serve", LIVEBOARD_BOARD_WORKERS="many")
    assert r.returncode == 2 and "workers" in r.stderr and "'many'" in r.stderr, r.stderr


def test_an_unreachable_clickhouse_is_one_line() -> None:
    r = run("db", "migrate")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "error: cannot reach ClickHouse" in r.stderr, r.stderr


def test_an_unreachable_broker_is_one_line() -> None:
    r = run("topics", "ensure")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "error: cannot reach Kafka" in r.stderr, r.stderr


def test_an_unusable_ingest_state_dir_is_named() -> None:
    r = run(
        "ingest",
        "--contest",
        "contests/harbin-2020.yaml",
        "--platforms-file",
        "/dev/null",
        LIVEBOARD_INGEST_STATE_DIR="/proc/liveboard-cannot-exist",
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "LIVEBOARD_INGEST_STATE_DIR /proc/liveboard-cannot-exist" in r.stderr, r.stderr
