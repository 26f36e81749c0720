"""Never read past a hole in a partition: a consumer-side guard for brokers that show batches out of order.

Found by ``bench/bench_broker_tail.py`` (docs/benchmarks.md, "Broker: a consumer at the head"): on the
embedded broker (tansu), with two producers writing to the same partitions, a bare aiokafka consumer reading
at the head of the log now and then receives a later batch of a partition before an earlier one is readable
(2–5 consecutive offsets, about once a minute at 3,000 records/s). A Kafka client takes a batch whose base
offset is beyond its fetch offset as a legal gap (compaction, transaction markers) and moves past it, so the
earlier records are never returned, although they are on the log when read again later. The scorer then
never archived them while committing later offsets: a hole in the archive, the truth of the contest.

Liveboard's topics are never compacted and no producer uses transactions, so between two records a
consumer has returned, an offset gap can only be such a moment: this guard hands the caller the records up
to the hole, seeks the partition back to the first missing offset and lets the next fetch read it again.
A hole that is still there after ``hold_s`` (records really gone: retention, a broker that lost them) is
passed over with an error log, so a consumer never stalls for good; both outcomes are counted in
``liveboard_kafka_offset_gaps_total``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from aiokafka import TopicPartition
from prometheus_client import Counter

log = logging.getLogger(__name__)

GAPS = Counter(
    "liveboard_kafka_offset_gaps_total",
    "Offset gaps met at the head of a partition: read again (reread), passed over after the hold (skipped)",
    ["topic", "outcome"],
)

DEFAULT_HOLD_S = 30.0


class _Seeker(Protocol):
    def seek(self, partition: TopicPartition, offset: int) -> None: ...


class _HasOffset(Protocol):
    offset: int


M = TypeVar("M", bound=_HasOffset)


class GapGuard:
    """Per partition, the next offset expected; ``take`` returns the records up to a hole and seeks back."""

    def __init__(self, consumer: _Seeker, hold_s: float = DEFAULT_HOLD_S, clock: Any = time.monotonic) -> None:
        self.consumer = consumer
        self.hold_s = hold_s
        self.clock = clock
        self.next: dict[TopicPartition, int] = {}
        self.holes: dict[tuple[TopicPartition, int], float] = {}  # (partition, first missing) -> first seen

    def expect(self, tp: TopicPartition, offset: int) -> None:
        """The partition is read from ``offset`` (assigned at a committed offset, or sought)."""
        self.next[tp] = offset

    def forget(self, tps: Sequence[TopicPartition] | None = None) -> None:
        """Positions changed outside this guard (a group rebalance): expect nothing of these partitions."""
        for tp in list(self.next) if tps is None else tps:
            self.next.pop(tp, None)

    def take(self, tp: TopicPartition, msgs: Sequence[M]) -> list[M]:
        exp = self.next.get(tp)
        out: list[M] = []
        for m in msgs:
            off = m.offset
            if exp is not None and off > exp:
                key = (tp, exp)
                now = self.clock()
                since = self.holes.setdefault(key, now)
                if now - since < self.hold_s:
                    if now == since:
                        log.warning(
                            "offset gap at the head of a partition: reading it again",
                            extra={
                                "fields": {"topic": tp.topic, "partition": tp.partition, "expected": exp, "got": off}
                            },
                        )
                    GAPS.labels(tp.topic, "reread").inc()
                    self.consumer.seek(tp, exp)
                    self.next[tp] = exp
                    return out
                log.error(
                    "offsets missing from the log for longer than the hold: passed over",
                    extra={
                        "fields": {
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "missing_from": exp,
                            "missing_to": off - 1,
                            "hold_s": self.hold_s,
                        }
                    },
                )
                GAPS.labels(tp.topic, "skipped").inc()
                del self.holes[key]
            elif exp is not None and self.holes:
                self.holes.pop((tp, exp), None)  # the hole filled: forget when it was first seen
            out.append(m)
            exp = off + 1
        if exp is not None:
            self.next[tp] = exp
        return out


async def expect_committed(guard: GapGuard, consumer: Any, tps: Sequence[TopicPartition] | None = None) -> None:
    """Expect each assigned partition to be read from its group's committed offset (none: from wherever the
    consumer's reset policy starts, taken from the first record read)."""
    for tp in list(consumer.assignment()) if tps is None else tps:
        off = await consumer.committed(tp)
        if off is not None:
            guard.expect(tp, off)
