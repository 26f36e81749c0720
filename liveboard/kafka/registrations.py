"""``lb.registrations.v1``: the account bindings the collectors need, on a small topic of their own.

Every collector process (the poller and each webhook worker) must know which accounts are registered, and
must learn a binding made while it runs within seconds. Reading ``lb.events.v1`` from offset 0 for the rare
``account_bound`` among millions of metric and order events cost the broker half a core per three readers
(issue 14). So whoever produces an ``account_bound`` to the event log then produces the same event here
(``send_registrations``, called by ``liveboard.organiser.store.send_events`` after the log acknowledged);
the collectors read only this topic (``follow_registrations``), from the beginning at start-up.

The event log stays the truth; this topic is a projection of it:

* a crash between the two writes leaves the binding in the log but not here: ``rebuild`` (the CLI's
  ``liveboard ingest rebuild-registrations``) reads both topics and produces every ``account_bound`` of the
  log that is missing here, so running it is always safe (it produces nothing when they agree);
* duplicates and order do not matter: the collectors' registry folds bindings by (observed_at, event_id)
  per (contest, contestant, platform), the rule the scorer uses, so a record re-produced late changes
  nothing;
* the key (platform:account:contest:contestant) keeps, under compaction, the latest record of every
  binding that can still be in force (compaction is not relied on: the embedded broker does not compact).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from liveboard.contracts.events import encode_event, parse_event
from liveboard.errors import TopicError
from liveboard.kafka.catalog import EVENTS, REGISTRATIONS
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.kafka.gaps import GapGuard
from liveboard.settings import Settings

log = logging.getLogger(__name__)

TYPES = frozenset({"account_bound"})


def registration_key(ev: Any) -> bytes:
    return f"{ev.platform}:{ev.account_id}:{ev.contest_id}:{ev.contestant_id}".encode()


def registration_events(events: Iterable[Any]) -> list[Any]:
    return [e for e in events if e.type in TYPES]


async def send_registrations(settings: Settings, events: Iterable[Any], producer: Any = None) -> int:
    """Produce the ``account_bound`` among ``events`` to lb.registrations.v1 and wait for every
    acknowledgement. Call it after the event log acknowledged them (the log is the truth)."""
    regs = registration_events(events)
    if not regs:
        return 0
    own = producer is None
    if own:
        producer = make_producer(settings, client_id="liveboard-registrations", linger_ms=0)
        await producer.start()
    try:
        topic = settings.topic(REGISTRATIONS)
        futures = [
            await producer.send(
                topic,
                encode_event(ev),
                key=registration_key(ev),
                headers=[("type", ev.type.encode()), ("schema_version", str(ev.schema_version).encode())],
            )
            for ev in regs
        ]
        for fut in futures:
            await fut
        return len(regs)
    finally:
        if own:
            await producer.stop()


async def follow_registrations(
    settings: Settings, apply: Callable[[Any], None], caught_up: asyncio.Event | None = None
) -> None:
    """Apply every registration of lb.registrations.v1 from the beginning, then each new one as it comes
    (until cancelled). ``caught_up`` is set once the records present at start have been applied."""
    consumer, end = await _open(settings, REGISTRATIONS, fetch_max_wait_ms=500)
    guard = GapGuard(consumer)  # a registration passed over at the head would leave an account unpolled
    try:
        while True:
            if caught_up is not None and not caught_up.is_set() and await _reached(consumer, end):
                caught_up.set()
            batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
            for tp, records in batch.items():
                for msg in guard.take(tp, records):
                    ev = _parse(msg)
                    if ev is not None and ev.type in TYPES:
                        apply(ev)
    finally:
        await consumer.stop()


@dataclass
class RebuildReport:
    in_log: int  # account_bound events in lb.events.v1
    present: int  # of those, already on lb.registrations.v1
    produced: int  # produced now (missing before)


async def rebuild(settings: Settings) -> RebuildReport:
    """Produce every ``account_bound`` of the event log that lb.registrations.v1 lacks (in log order)."""
    have = {ev.event_id for ev in await read_all(settings, REGISTRATIONS)}
    in_log = await read_all(settings, EVENTS, only_types=TYPES)
    missing: dict[str, Any] = {}
    for ev in in_log:
        if ev.event_id not in have:
            missing.setdefault(ev.event_id, ev)
    produced = await send_registrations(settings, missing.values())
    ids = {ev.event_id for ev in in_log}
    report = RebuildReport(len(ids), len(ids & have), produced)
    log.info("registrations rebuilt", extra={"fields": report.__dict__})
    return report


async def read_all(settings: Settings, logical_topic: str, only_types: frozenset[str] | None = None) -> list[Any]:
    """Every event of a topic up to its end offsets at the call (filtered on the ``type`` header)."""
    consumer, end = await _open(settings, logical_topic, fetch_max_wait_ms=100, max_partition_fetch_bytes=8 << 20)
    out: list[Any] = []
    try:
        while not await _reached(consumer, end):
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                for msg in records:
                    if only_types is not None and dict(msg.headers or ()).get("type", b"").decode() not in only_types:
                        continue
                    ev = _parse(msg)
                    if ev is not None and (only_types is None or ev.type in only_types):
                        out.append(ev)
    finally:
        await consumer.stop()
    return out


async def _open(settings: Settings, logical_topic: str, **over: Any) -> tuple[Any, dict[TopicPartition, int]]:
    """A group-less consumer assigned every partition of the topic from the beginning, and their end offsets."""
    topic = settings.topic(logical_topic)
    consumer = make_consumer(settings, group_id=None, **over)
    await consumer.start()
    try:
        parts: set[int] | None = None
        for _ in range(50):
            await consumer.topics()  # refreshes the metadata
            parts = consumer.partitions_for_topic(topic)
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            raise TopicError(f"topic {topic} does not exist (run `liveboard topics ensure`)")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
    except BaseException:
        await consumer.stop()
        raise
    return consumer, end


async def _reached(consumer: Any, end: dict[TopicPartition, int]) -> bool:
    for tp, off in end.items():
        if await consumer.position(tp) < off:
            return False
    return True


def _parse(msg: Any) -> Any:
    try:
        return parse_event(msg.value)
    except Exception as exc:  # a bad record is its producer's bug, not a reason to stop following
        log.warning("unreadable registration record", extra={"fields": {"offset": msg.offset, "error": str(exc)[:200]}})
        return None
