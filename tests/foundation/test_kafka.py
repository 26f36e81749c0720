"""Real broker: consumer groups, committed offsets, the ListOffsets correction, the topic catalog."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from liveboard.kafka import compat
from liveboard.kafka.catalog import ensure_topics, load_catalog
from liveboard.kafka.clients import make_admin, make_consumer, make_producer
from liveboard.settings import Settings
from tests.support import unique

pytestmark = pytest.mark.engines


async def _create(settings: Settings, topic: str, partitions: int) -> None:
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _produce(settings: Settings, topic: str, n: int, start: int = 0) -> None:
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    try:
        futs = [await producer.send(topic, key=f"k{i % 7}".encode(), value=str(i).encode()) for i in range(start, n)]
        await producer.flush()
        for f in futs:
            await f
    finally:
        await producer.stop()


async def _drain(consumer, want: int, timeout_s: float = 30.0) -> list:  # type: ignore[no-untyped-def]
    got: list = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(got) < want and asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            got.extend(records)
    return got


async def test_two_member_group_round_trip_and_resume_after_restart(stack: Settings) -> None:
    topic, group = unique("rt"), unique("grp")
    await _create(stack, topic, 4)
    await _produce(stack, topic, 200)

    # Two members share the partitions; together they see every record exactly once.
    c1 = make_consumer(stack, topic, group_id=group)
    c2 = make_consumer(stack, topic, group_id=group)
    await c1.start()
    await c2.start()
    try:
        got: list = []
        deadline = asyncio.get_running_loop().time() + 40
        while len(got) < 200 and asyncio.get_running_loop().time() < deadline:
            for c in (c1, c2):
                for records in (await c.getmany(timeout_ms=300)).values():
                    got.extend(records)
        assert sorted(int(r.value) for r in got) == list(range(200))
        a1, a2 = c1.assignment(), c2.assignment()
        assert a1 and a2 and not (a1 & a2), (a1, a2)
        await c1.commit()
        await c2.commit()
    finally:
        await c1.stop()
        await c2.stop()

    # More records while nobody consumes; a restarted member resumes from the committed offsets.
    await _produce(stack, topic, 260, start=200)
    c3 = make_consumer(stack, topic, group_id=group)
    await c3.start()
    try:
        rest = await _drain(c3, 60)
        assert sorted(int(r.value) for r in rest) == list(range(200, 260))
        assert not await _drain(c3, 1, timeout_s=1.5)
    finally:
        await c3.stop()


async def test_end_offsets_are_high_watermarks(stack: Settings) -> None:
    """tansu answers ListOffsets(LATEST) short when the last batch holds several records; the fix corrects it."""
    topic = unique("lo")
    await _create(stack, topic, 1)
    producer = make_producer(stack, linger_ms=200)  # one multi-record batch
    await producer.start()
    futs = [await producer.send(topic, value=b"x", partition=0) for _ in range(10)]
    await producer.flush()
    await asyncio.gather(*futs)
    await producer.stop()

    tp = TopicPartition(topic, 0)
    consumer = make_consumer(stack, group_id=None)
    await consumer.start()
    try:
        assert compat.is_installed() == stack.kafka_list_offsets_fix
        assert (await consumer.end_offsets([tp]))[tp] == 10
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        assert await consumer.position(tp) == 10
        if stack.kafka_list_offsets_fix:
            compat.install(False)  # show that the correction is what makes it right on this broker
            try:
                raw = (await consumer.end_offsets([tp]))[tp]
            finally:
                compat.install(True)
            assert raw < 10, "the embedded broker answered ListOffsets correctly: is the correction still needed?"
    finally:
        await consumer.stop()


async def test_catalog_topics_exist_and_mismatch_is_reported(stack: Settings) -> None:
    catalog = load_catalog()
    report = await ensure_topics(stack, catalog)
    assert report.success and not report.created
    assert sorted(report.ok) == sorted(stack.topic(t.name) for t in catalog.topics)

    # A topic that exists with a different partition count is reported, not ignored.
    name = unique("mm")
    await _create(stack, name, 2)
    from liveboard.kafka.catalog import Catalog, TopicSpec

    report = await ensure_topics(stack, Catalog((TopicSpec(name, 3, -1, "k", "test"),)))
    assert not report.success
    assert report.mismatched == [f"{name}: has 2 partitions, catalog declares 3"]
