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
import base64
import hashlib
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from liveboard.contracts.events import SCHEMA_VERSION, encode_event
from liveboard.kafka.catalog import DLQ, EVENTS, RAW
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings
from services.ingest import metrics as m

log = logging.getLogger(__name__)

RAW_SCHEMA_VERSION = 1


def raw_id_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def body_fields(body: bytes) -> dict[str, str]:
    """The body as text when it is UTF-8, else base64 (a DLQ or raw record must always be JSON)."""
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(body).decode()}


class EventProducer:
    def __init__(self, settings: Settings, *, linger_ms: int = 20, client_id: str = "liveboard-ingest"):
        self.settings = settings
        self.topic_raw = settings.topic(RAW)
        self.topic_events = settings.topic(EVENTS)
        self.topic_dlq = settings.topic(DLQ)
        self._producer: AIOKafkaProducer = make_producer(
            settings,
            client_id=client_id,
            linger_ms=linger_ms,
            max_batch_size=512 * 1024,
        )
        self._inflight: set[asyncio.Future] = set()
        self.sent = 0
        self.failed = 0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def flush(self) -> None:
        await self._producer.flush()
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        t0 = time.perf_counter()
        fut = await self._producer.send(topic, value=value, key=key, headers=headers)
        self._inflight.add(fut)
        fut.add_done_callback(lambda f: self._done(f, topic, t0))

    def _done(self, fut: asyncio.Future, topic: str, t0: float) -> None:
        self._inflight.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            self.failed += 1
            m.PRODUCE_ERRORS.labels(topic).inc()
            log.error("produce failed", extra={"fields": {"topic": topic, "error": repr(fut.exception())}})
            return
        self.sent += 1
        m.PRODUCE_LATENCY.labels(topic).observe(time.perf_counter() - t0)

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
        raw_id = raw_id_of(body)
        doc = {
            "raw_id": raw_id,
            "platform": platform,
            "account_id": account_id,
            "source": source,
            "endpoint": endpoint,
            "received_at": received_at,
            "meta": meta or {},
            **body_fields(body),
        }
        await self._send(
            self.topic_raw,
            f"{platform}:{account_id}".encode(),
            orjson.dumps(doc),
            [("type", b"raw"), ("schema_version", str(RAW_SCHEMA_VERSION).encode())],
        )
        return {"topic": RAW, "raw_id": raw_id}

    async def emit(self, event: BaseModel) -> None:
        e: Any = event
        key = f"{e.contest_id}:{e.contestant_id or ''}".encode()
        await self._send(
            self.topic_events,
            key,
            encode_event(event),
            [("type", e.type.encode()), ("schema_version", str(SCHEMA_VERSION).encode())],
        )
        m.EVENTS.labels(e.platform or "", e.type).inc()

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
        doc = {
            "source": source,
            "platform": platform,
            "account_id": account_id,
            "reason": reason,
            "received_at": received_at,
            **body_fields(body),
        }
        m.DEAD_LETTERS.labels(platform, reason_class).inc()
        log.warning("dead-lettered", extra={"fields": {"source": source, "platform": platform, "reason": reason[:300]}})
        await self._send(
            self.topic_dlq,
            source.encode(),
            orjson.dumps(doc),
            [("type", b"dead_letter"), ("schema_version", b"1")],
        )
