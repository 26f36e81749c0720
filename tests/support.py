"""Helpers for tests (importable as ``tests.support``)."""

from __future__ import annotations

import uuid
from pathlib import Path

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
