"""Helpers for tests (importable as ``tests.support``)."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from pathlib import Path
from typing import Any

from deploy.embedded.processes import free_port
from liveboard.settings import Settings

ENV_KEYS = (
    "LIVEBOARD_HOME",
    "LIVEBOARD_BROKER_PORT",
    "LIVEBOARD_CLICKHOUSE_PORT",
    "LIVEBOARD_KAFKA_BOOTSTRAP",
    "LIVEBOARD_CLICKHOUSE_URL",
    "LIVEBOARD_CLICKHOUSE_DATABASE",
)


def stack_settings(home: Path, **extra: object) -> Settings:
    return Settings(
        home=home,
        broker_port=free_port(),
        clickhouse_port=free_port(),
        _env_file=None,  # type: ignore[call-arg]
        **extra,
    )


def settings_env(s: Settings) -> dict[str, str]:
    """Environment variables that make a child process (CLI, faust worker, service) use ``s``."""
    env = {
        "LIVEBOARD_HOME": str(s.home),
        "LIVEBOARD_BROKER_PORT": str(s.broker_port),
        "LIVEBOARD_CLICKHOUSE_PORT": str(s.clickhouse_port),
        "LIVEBOARD_CLICKHOUSE_DATABASE": s.clickhouse_database,
        "LIVEBOARD_KAFKA_LIST_OFFSETS_FIX": "true" if s.kafka_list_offsets_fix else "false",
    }
    if s.kafka_bootstrap:
        env["LIVEBOARD_KAFKA_BOOTSTRAP"] = s.kafka_bootstrap
    if s.clickhouse_url:
        env["LIVEBOARD_CLICKHOUSE_URL"] = s.clickhouse_url
    return env


def unique(prefix: str) -> str:
    """A name no other test (or earlier run against an external broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def poll_until(check: Any, timeout_s: float, interval_s: float = 0.2) -> Any:
    """Call ``check()`` (plain or async) until it returns something truthy or ``timeout_s`` has passed; returns
    the last value. Tests wait on observable state with this, never with a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval_s)


def wait_until(check: Any, timeout_s: float, interval_s: float = 0.2) -> Any:
    """``poll_until`` for synchronous tests."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)
