"""A fold worker commits a batch's offsets only once the rule inputs it changed are on
``lb.scorer_inputs.v1`` (docs/scoring.md, "Staged topology"). When the broker refuses a send, the worker
retries (offsets held) and sends every change again; it neither drops the changes (the ranking stage would
miss those contestants' inputs until they change again) nor lets the exception end its flush loop.

In process against the real broker and ClickHouse; the refusal is injected at the producer's ``send``
(the first call raises as a broker that is unreachable does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from liveboard.kafka.catalog import SCORER_INPUTS
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.settings import Settings
from services.scoring.batch import Record
from services.scoring.config import ScorerSettings
from services.scoring.contests import load_plans
from services.scoring.staged import FoldScorer
from tests.scoring import factory as f
from tests.scoring.contests import T0, make_contest
from tests.support import unique

pytestmark = pytest.mark.engines

TOPIC = "lb.events.v1"


async def _inputs_sent(stack: Settings, cid: str, since: dict[int, int]) -> dict[str, dict[str, Any]]:
    """The newest inputs record per contestant of ``cid`` on lb.scorer_inputs.v1 after ``since``."""
    topic = stack.topic(SCORER_INPUTS)
    consumer = make_consumer(stack, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, since.get(tp.partition, 0))
        out: dict[str, dict[str, Any]] = {}

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            for _tp, msgs in (await consumer.getmany(timeout_ms=500)).items():
                for m in msgs:
                    if dict(m.headers).get("type") != b"scorer_inputs":
                        continue
                    doc = orjson.loads(m.value)
                    if doc.get("contest_id") == cid:
                        out[doc["contestant_id"]] = doc
        return out
    finally:
        await consumer.stop()


async def _ends(stack: Settings) -> dict[int, int]:
    topic = stack.topic(SCORER_INPUTS)
    consumer = make_consumer(stack, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def test_inputs_a_refused_send_left_off_kafka_are_sent_again_before_the_offsets_are_committed(
    stack: Settings, tmp_path: Path
) -> None:
    cid = unique("emit")
    path, _ = make_contest(tmp_path, cid, 12)
    cfg = ScorerSettings(contest_files=[path], contests=[cid], retry_base_s=0.01, retry_cap_s=0.05)
    sc = FoldScorer(stack, cfg, load_plans(cfg), list(range(6)))
    sc.ready.set()  # no rebuild: the contest is new, its archive empty
    committed: dict[tuple[str, int], int] = {}
    seen_at_commit: list[dict[str, dict[str, Any]]] = []
    since = await _ends(stack)

    async def commit(records: list[Record]) -> None:
        # what is on the topic when the offsets are committed: the inputs must already be there
        seen_at_commit.append(await _inputs_sent(stack, cid, since))
        for r in records:
            committed[(r.topic, r.partition)] = max(committed.get((r.topic, r.partition), 0), r.offset + 1)

    sc.register_acker("direct", commit)
    producer = make_producer(stack, linger_ms=2)
    await producer.start()
    refusals = 0
    real_send = producer.send

    async def send(*args: Any, **kwargs: Any) -> Any:
        nonlocal refusals
        if refusals == 0:  # the first send after the first record is taken: the broker does not answer
            refusals += 1
            raise KafkaTimeoutError("injected: broker unreachable")
        return await real_send(*args, **kwargs)

    producer.send = send  # type: ignore[method-assign]
    sc.producer = producer
    try:
        records = [
            Record(TOPIC, p, 0, f.encode(f.live_snapshot(cid, who, T0 + 60_000, gmv_fen=gmv, orders_paid=1)))
            for p, who, gmv in ((1, "c0001", 1200), (4, "c0002", 3400))
        ]
        await sc.handle_events("direct", records)
        await sc.flush()  # the old code raised here (the flush loop ended) and forgot the changes
    finally:
        await producer.stop()
        sc.sink.close()

    assert refusals == 1
    assert committed == {(TOPIC, 1): 1, (TOPIC, 4): 1}
    # both contestants' inputs were on the topic before the commit, with the figures folded
    assert len(seen_at_commit) == 1
    sent = seen_at_commit[0]
    assert sorted(sent) == ["c0001", "c0002"], sorted(sent)
    assert sent["c0001"]["facts"]["gmv_fen"] == 1200 and sent["c0002"]["facts"]["gmv_fen"] == 3400
