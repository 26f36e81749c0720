"""A faust app with a Table, used by test_faust_recovery: counts per key, recovered from the changelog.

Configured entirely from LIVEBOARD_* variables plus COUNTER_APP_ID / COUNTER_DATADIR so each test run uses
its own topics and state folder.
"""

from __future__ import annotations

import os

import faust

from liveboard.kafka.clients import faust_settings
from liveboard.settings import get_settings

APP_ID = os.environ["COUNTER_APP_ID"]

app = faust.App(
    APP_ID,
    datadir=os.environ["COUNTER_DATADIR"],
    store="memory://",
    topic_partitions=2,
    **faust_settings(get_settings()),
)
source = app.topic(f"{APP_ID}-in", key_type=str, value_type=str, partitions=2)
sink = app.topic(f"{APP_ID}-out", key_type=str, value_type=str, partitions=1)
counts = app.Table("counts", default=int, partitions=2)


@app.agent(source)
async def count(stream):  # type: ignore[no-untyped-def]
    async for key, _value in stream.items():
        counts[key] += 1
        # Every new count is published: the test reads the last one per key.
        await sink.send(key=key, value=str(counts[key]))


if __name__ == "__main__":
    app.main()
