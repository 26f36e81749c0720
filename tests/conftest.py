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

# ``pytest -m "not engines"`` is the fast unit run: it must never start the broker or ClickHouse, and
# ``-m "not browser"`` must never start Chromium. A test that takes one of these fixtures without its marker
# fails at set-up, naming the marker, before anything starts; one that starts a stack in-process does too.
MARKED_FIXTURES = {"stack": "engines", "browser": "browser"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    names = set(getattr(item, "fixturenames", ()))
    missing = [
        f"pytest.mark.{marker} (it uses the {name!r} fixture)"
        for name, marker in MARKED_FIXTURES.items()
        if name in names and item.get_closest_marker(marker) is None
    ]
    if missing:
        pytest.fail(f"{item.nodeid} must be marked {', '.join(missing)}", pytrace=False)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_engines(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("engines") is None:

        def refuse(*_args: object, **_kwargs: object) -> None:
            pytest.fail(f"{request.node.nodeid} starts the embedded stack: mark it pytest.mark.engines", pytrace=False)

        monkeypatch.setattr(Stack, "up", refuse)


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
        st.up(bound=True)  # the engines die with this session, even when it is killed (a CI timeout)
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
