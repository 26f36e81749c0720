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
# Value per key: [count, offset of the last input counted]. One write per event keeps both in one changelog
# record, so a redelivered input (at-least-once after a restart) is recognised and not counted twice, the
# way Liveboard's sinks de-duplicate by event id.
counts = app.Table("counts", default=lambda: [0, -1], partitions=2)


@app.agent(source)
async def count(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        key = event.key
        n, last = counts[key]
        if event.message.offset <= last:
            continue
        counts[key] = [n + 1, event.message.offset]
        # Every new count is published: the test reads the last one per key.
        await sink.send(key=key, value=str(n + 1))


if __name__ == "__main__":
    app.main()
