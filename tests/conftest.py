"""Shared fixtures: one real embedded stack (tansu + chdb ClickHouse) per test session, on free ports.

Every test that needs Kafka or ClickHouse takes the ``stack`` fixture, which yields a ``Settings`` pointing at
the session's engines (topics ensured, migrations applied). The stack is always stopped at the end.
Set ``LIVEBOARD_TEST_KAFKA`` / ``LIVEBOARD_TEST_CLICKHOUSE_URL`` to run the same tests against an existing
Kafka and ClickHouse instead (no embedded stack is started then).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from deploy.embedded.stack import Stack
from liveboard.settings import Settings
from tests.support import ENV_KEYS, settings_env, stack_settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    from liveboard.clickhouse.migrate import migrate
    from liveboard.kafka.catalog import ensure_topics

    external_kafka = os.environ.get("LIVEBOARD_TEST_KAFKA")
    external_ch = os.environ.get("LIVEBOARD_TEST_CLICKHOUSE_URL")
    home = tmp_path_factory.mktemp("stack")
    db = f"lbtest_{uuid.uuid4().hex[:8]}" if external_ch else "liveboard"
    if external_kafka and external_ch:
        settings = stack_settings(
            home,
            kafka_bootstrap=external_kafka,
            clickhouse_url=external_ch,
            clickhouse_database=db,
            kafka_list_offsets_fix=False,
        )
        st = None
    else:
        settings = stack_settings(home)
        st = Stack(settings)
        st.up()
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(settings_env(settings))
    try:
        migrate(settings)
        report = asyncio.run(ensure_topics(settings))
        assert report.success, report.mismatched
        yield settings
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if st is not None:
            st.down()
