"""Hands raw payloads, canonical events and dead letters to Kafka.

* ``lb.raw.v1``   key ``platform:account_id``: the payload exactly as received, ``raw_id`` = sha256 of it.
* ``lb.events.v1`` key ``contest_id:contestant_id`` (one contestant's events stay in order on one
  partition), the contract codec's bytes, headers ``type`` and ``schema_version``.
* ``lb.dlq.v1``   key = source name: what could not be turned into an event, and why.

Sends are batched by aiokafka (``linger_ms``) and never awaited one by one on the hot path: ``send`` only
waits for room in the batch buffer (back-pressure), and the acknowledgement is observed in a callback that
records produce latency and errors. ``flush`` waits for everything. Idempotence is on where the broker
supports it (``settings.kafka_idempotence``; off on the embedded broker, which lacks it); re-sent records
are harmless anyway because event ids are deterministic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from pydantic import BaseModel

from liveboard.contracts.events import SCHEMA_VERSION, encode_event
from liveboard.contracts.records import DEAD_LETTER_SCHEMA_VERSION, RAW_SCHEMA_VERSION, dead_letter, raw_record
from liveboard.kafka.catalog import DLQ, EVENTS, RAW
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings
from services.ingest import metrics as m

log = logging.getLogger(__name__)

_SCHEMA_VERSION = str(SCHEMA_VERSION).encode()


@dataclass
class _OpenBatch:
    builder: Any
    count: int
    t0: float
    # created only when a push handler waits for this batch (see Acks): polls never pay for it
    acked: asyncio.Future | None = None


class ProduceFailed(Exception):
    """The broker did not acknowledge a record a push handler was waiting for."""


_ACKS: ContextVar[Acks | None] = ContextVar("liveboard_ingest_acks", default=None)


class Acks:
    """Collects, for the current task only, the acknowledgements of every record sent inside the block
    and the push ids it found new.

    A webhook is answered only after ``wait()``, and its push ids are remembered as handled only then
    (services/ingest/base.py ``answer_acked``): an answered push is on the broker, so a collector that dies
    after answering loses nothing; one that dies before has remembered nothing, so the platform's retry
    gets through; one whose records fail answers 503. (A context variable, because every aiohttp request
    runs in its own task: concurrent pushes never see each other's records.)

    Blocks nest: an inner block's futures are also the outer block's, so a poll pass can wait once for
    everything its steps produced (e.g. before moving a cursor) while each step marks its own facts.
    Waiting costs no batching: records still go out in the producer's shared batches, a block only holds
    one future per batch it wrote into.
    """

    def __init__(self) -> None:
        self.futures: list[asyncio.Future] = []
        self.seen_keys: list[str] = []
        self._token: Any = None
        self._parent: Acks | None = None

    def __enter__(self) -> Acks:
        self._parent = _ACKS.get()
        self._token = _ACKS.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ACKS.reset(self._token)
        if self._parent is not None:
            self._parent.futures += self.futures
            self._parent = None

    @staticmethod
    def current() -> Acks | None:
        return _ACKS.get()

    async def wait(self) -> bool:
        """True once every record is acknowledged; False if any was not.

        The futures are the producer's batch futures, shared by every push that wrote into the batch: they
        are waited for with one done-callback each and never cancelled from here (``asyncio.gather`` would
        cancel them if this task were cancelled, failing every other push of the batch; it also cost ~4 %
        of a webhook worker's CPU in the py-spy profile, for a wait on usually one future)."""
        futs = self.futures
        if not futs:
            return True
        if len(futs) > 1:
            futs = list(dict.fromkeys(futs))
        pending = [f for f in futs if not f.done()]
        if pending:
            waiter = asyncio.get_running_loop().create_future()
            left = [len(pending)]

            def one(_f: asyncio.Future) -> None:
                left[0] -= 1
                if left[0] == 0 and not waiter.done():
                    waiter.set_result(None)

            for f in pending:
                f.add_done_callback(one)
            try:
                await waiter
            except BaseException:
                for f in pending:
                    f.remove_done_callback(one)
                raise
        return not any(f.cancelled() or f.exception() is not None for f in futs)


class EventProducer:
    """Batches records per topic-partition itself and hands whole batches to aiokafka (``send_batch``).

    aiokafka's per-record ``send`` costs ~3× a ``BatchBuilder.append`` (metadata checks, partitioner, a
    future per record), which made the producer the collector's bottleneck. Batches are shipped when full,
    after ``max_records``, or ``linger_ms`` after their first record; aiokafka applies back-pressure by
    letting one batch per partition wait for the previous one to drain.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        linger_ms: int = 20,
        client_id: str = "liveboard-ingest",
        compression: str | None = None,
        max_records: int = 2000,
    ):
        self.settings = settings
        self.topic_raw = settings.topic(RAW)
        self.topic_events = settings.topic(EVENTS)
        self.topic_dlq = settings.topic(DLQ)
        self.linger_s = linger_ms / 1000
        self.max_records = max_records
        self._producer: AIOKafkaProducer = make_producer(
            settings,
            client_id=client_id,
            linger_ms=linger_ms,
            max_batch_size=512 * 1024,
            compression_type=compression,
        )
        self._inflight: set[asyncio.Future] = set()
        self.sent = 0
        self.failed = 0
        self._partitions: dict[str, list[int]] = {}
        self._part_cache: dict[tuple[str, bytes], int] = {}
        self._event_counters: dict[tuple[str, str], Any] = {}
        self._headers: dict[str, list[tuple[str, bytes]]] = {}
        self._event_counts: dict[tuple[str | None, str], int] = {}
        self._latency = {t: m.PRODUCE_LATENCY.labels(t) for t in (self.topic_raw, self.topic_events, self.topic_dlq)}
        self._open: dict[tuple[str, int], _OpenBatch] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._shipping: set[asyncio.Task] = set()
        self._ship_locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def start(self) -> None:
        await self._producer.start()
        for topic in (self.topic_raw, self.topic_events, self.topic_dlq):
            self._partitions[topic] = sorted(await self._producer.partitions_for(topic))

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def flush(self) -> None:
        await self._ship_all()
        if self._shipping:
            await asyncio.gather(*list(self._shipping), return_exceptions=True)
        await self._producer.flush()
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    def _partition(self, topic: str, key: bytes) -> int:
        """Kafka's default partitioner (murmur2 of the key), memoised: keys repeat (one per contestant or
        account) and aiokafka computes murmur2 in pure Python on every record. Same function as every other
        producer of these topics, so a contestant's events from the board and from ingest share a partition."""
        p = self._part_cache.get((topic, key))
        if p is None:
            parts = self._partitions[topic]
            p = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
            if len(self._part_cache) > 200_000:
                self._part_cache.clear()
            self._part_cache[(topic, key)] = p
        return p

    async def _send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        tp = (topic, self._partition(topic, key))
        for _ in range(2):
            ob = self._open.get(tp)
            if ob is None:
                ob = self._open[tp] = _OpenBatch(self._producer.create_batch(), 0, time.perf_counter())
                self._arm()
            if ob.builder.append(key=key, value=value, timestamp=None, headers=headers) is not None:
                ob.count += 1
                acks = _ACKS.get()
                if acks is not None:
                    if ob.acked is None:
                        ob.acked = asyncio.get_running_loop().create_future()
                    if not acks.futures or acks.futures[-1] is not ob.acked:
                        acks.futures.append(ob.acked)
                if ob.count >= self.max_records:
                    await self._ship(tp, ob)
                return
            await self._ship(tp, ob)  # full: ship it, then append to a fresh one
        raise ValueError(f"a record of {len(value)} bytes does not fit in an empty batch")

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger_s, self._linger_expired)

    def _linger_expired(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._ship_all())
        self._shipping.add(task)
        task.add_done_callback(self._shipping.discard)

    async def _ship_all(self) -> None:
        self._count_events()
        for tp, ob in list(self._open.items()):
            await self._ship(tp, ob)

    async def _ship(self, tp: tuple[str, int], ob: _OpenBatch) -> None:
        if self._open.get(tp) is not ob:
            return  # already shipped by someone else
        del self._open[tp]  # before any await: later records go to a new batch
        if ob.count == 0:
            return
        topic, partition = tp
        ob.builder.close()
        # One shipper per partition at a time: aiokafka queues one batch per partition until the previous
        # one has been drained into a request, so concurrent shippers would only wait (and time out) in
        # its queue; serialised, the records that arrive meanwhile build up into the next, bigger batch.
        lock = self._ship_locks.get(tp)
        if lock is None:
            lock = self._ship_locks[tp] = asyncio.Lock()
        async with lock:
            try:
                fut = await self._producer.send_batch(ob.builder, topic, partition=partition)
            except Exception as exc:
                self._failed(topic, ob.count, exc)
                _settle(ob.acked, exc)
                return
        self._inflight.add(fut)
        fut.add_done_callback(lambda f: self._done(f, topic, ob))

    def _failed(self, topic: str, count: int, exc: BaseException | None) -> None:
        self.failed += count
        m.PRODUCE_ERRORS.labels(topic).inc(count)
        log.error("produce failed", extra={"fields": {"topic": topic, "records": count, "error": repr(exc)}})

    def _done(self, fut: asyncio.Future, topic: str, ob: _OpenBatch) -> None:
        self._inflight.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            exc = None if fut.cancelled() else fut.exception()
            self._failed(topic, ob.count, exc)
            _settle(ob.acked, exc or ProduceFailed("cancelled"))
            return
        self.sent += ob.count
        _settle(ob.acked, None)
        # one observation per batch: the time its oldest record waited for the broker's acknowledgement
        self._latency[topic].observe(time.perf_counter() - ob.t0)

    async def archive_raw(
        self,
        *,
        platform: str,
        account_id: str,
        source: str,
        endpoint: str,
        body: bytes,
        received_at: int,
        meta: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Archive a payload; returns the ``raw_ref`` canonical events carry."""
        doc = raw_record(
            platform=platform,
            account_id=account_id,
            source=source,
            endpoint=endpoint,
            body=body,
            received_at=received_at,
            meta=meta,
        )
        raw_id = doc["raw_id"]
        await self._send(
            self.topic_raw,
            f"{platform}:{account_id}".encode(),
            orjson.dumps(doc),
            [("type", b"raw"), ("schema_version", str(RAW_SCHEMA_VERSION).encode())],
        )
        return {"topic": RAW, "raw_id": raw_id}

    async def emit(self, event: BaseModel, value: bytes | None = None) -> None:
        """Produce a canonical event; ``value`` is its encoding when the caller already has it."""
        e: Any = event
        key = f"{e.contest_id}:{e.contestant_id or ''}".encode()
        await self._send(
            self.topic_events,
            key,
            value if value is not None else encode_event(event),
            [("type", e.type.encode()), ("schema_version", _SCHEMA_VERSION)],
        )
        counter = self._event_counters.get((e.platform, e.type))
        if counter is None:  # labels() is a lock and a dict walk: resolve each child once
            counter = self._event_counters[(e.platform, e.type)] = m.EVENTS.labels(e.platform or "", e.type)
        counter.inc()

    async def emit_doc(self, doc: dict[str, Any], value: bytes) -> None:
        """Produce a canonical event the contract accepted as ``doc`` (services/ingest/events.py), as its
        encoding ``value``: the same record ``emit`` makes, without building the model."""
        t = doc["type"]
        key = f"{doc['contest_id']}:{doc['contestant_id'] or ''}".encode()
        headers = self._headers.get(t)
        if headers is None:
            headers = self._headers[t] = [("type", t.encode()), ("schema_version", _SCHEMA_VERSION)]
        await self._send(self.topic_events, key, value, headers)
        # counted locally and added to the metric once per linger (a prometheus inc per event showed in
        # the profile; the metric lags by at most linger_ms)
        k = (doc["platform"], t)
        self._event_counts[k] = self._event_counts.get(k, 0) + 1

    def _count_events(self) -> None:
        counts, self._event_counts = self._event_counts, {}
        for (platform, t), n in counts.items():
            counter = self._event_counters.get((platform, t))
            if counter is None:
                counter = self._event_counters[(platform, t)] = m.EVENTS.labels(platform or "", t)
            counter.inc(n)

    async def dead_letter(
        self,
        *,
        source: str,
        platform: str,
        reason: str,
        body: bytes,
        received_at: int,
        reason_class: str = "invalid",
        account_id: str | None = None,
    ) -> None:
        doc = dead_letter(
            source=source,
            platform=platform,
            reason=reason,
            body=body,
            received_at=received_at,
            account_id=account_id,
        )
        m.DEAD_LETTERS.labels(platform, reason_class).inc()
        log.warning("dead-lettered", extra={"fields": {"source": source, "platform": platform, "reason": reason[:300]}})
        await self._send(
            self.topic_dlq,
            source.encode(),
            orjson.dumps(doc),
            [("type", b"dead_letter"), ("schema_version", str(DEAD_LETTER_SCHEMA_VERSION).encode())],
        )


def _settle(fut: asyncio.Future | None, exc: BaseException | None) -> None:
    if fut is None or fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(ProduceFailed(repr(exc)))
        fut.exception()  # retrieved here: nobody may be waiting any more (no "never retrieved" noise)
