"""ClickHouse client factories (clickhouse-connect over HTTP), configured from Settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.client import Client

from liveboard.clickhouse.cluster import client_settings
from liveboard.settings import Settings


def _conn_args(settings: Settings, database: str | None) -> dict[str, Any]:
    url = urlparse(settings.clickhouse_http_url)
    secure = url.scheme == "https"
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or (8443 if secure else 8123),
        "secure": secure,
        "username": settings.clickhouse_user,
        "password": settings.clickhouse_password.get_secret_value(),
        "database": database if database is not None else settings.clickhouse_database,
        # The embedded chdb server has no session support worth relying on; every statement is standalone.
        "autogenerate_session_id": False,
        "connect_timeout": 5,
        "send_receive_timeout": 60,
    }


def _with_cluster(settings: Settings, kw: dict[str, Any]) -> dict[str, Any]:
    # On a cluster the tables are Distributed: inserts must reach the shards synchronously (cluster.py).
    extra = client_settings(settings.clickhouse_cluster)
    if extra:
        kw = {**kw, "settings": {**extra, **(kw.get("settings") or {})}}
    return kw


def get_client(settings: Settings, *, database: str | None = None, **kw: Any) -> Client:
    """A synchronous client; ``database=""`` connects without selecting the project database."""
    return clickhouse_connect.get_client(**_conn_args(settings, database), **_with_cluster(settings, kw))


async def get_async_client(settings: Settings, *, database: str | None = None, **kw: Any) -> AsyncClient:
    return await clickhouse_connect.get_async_client(**_conn_args(settings, database), **_with_cluster(settings, kw))


# Settings for inserts that must be de-duplicated by token (see dev-stack.md): async_insert would bypass
# the block de-duplication, and materialized views must de-duplicate too.
DEDUP_INSERT_SETTINGS: dict[str, Any] = {
    "async_insert": 0,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
}
