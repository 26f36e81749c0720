"""Events the board writes to lb.events.v1: judge scores and score adjustments.

An event is built with the contract models (``liveboard.contracts``), so anything the scorer would refuse
is refused here first; produced with ``acks=all`` and awaited, so a 201 means the broker has it; then
recorded in ``board_outbox`` with its partition and offset. Corrections are new events, never edits.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.asyncclient import AsyncClient

from liveboard.contracts import encode_event
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings
from services.board import metrics
from services.board.clock import stamp_ms


class EventWriter:
    def __init__(self, settings: Settings, ch: AsyncClient) -> None:
        self.settings = settings
        self.ch = ch
        self.producer: AIOKafkaProducer | None = None
        # Never the same ms twice, in this process or any other worker: the stamp is part of a judge
        # score's event id (services/board/clock.py).
        self.clock = stamp_ms

    async def start(self) -> None:
        self.producer = make_producer(self.settings, client_id="liveboard-board", linger_ms=0)
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def produce(self, events: list[Any], *, actor: str, round_id: str) -> list[dict[str, Any]]:
        """Send events (one contestant's, in order) and wait for every acknowledgement."""
        assert self.producer is not None, "EventWriter.start() first"
        topic = self.settings.topic(EVENTS)
        futures = []
        for ev in events:
            key = f"{ev.contest_id}:{ev.contestant_id or ''}".encode()
            headers = [("type", ev.type.encode()), ("schema_version", str(ev.schema_version).encode())]
            futures.append(await self.producer.send(topic, encode_event(ev), key=key, headers=headers))
        sent = []
        rows = []
        for ev, fut in zip(events, futures, strict=True):
            md = await fut
            metrics.EVENTS_PRODUCED.labels(ev.type).inc()
            sent.append({"event_id": ev.event_id, "partition": md.partition, "offset": md.offset})
            rows.append(
                [
                    ev.event_id,
                    ev.type,
                    ev.contest_id,
                    round_id,
                    ev.contestant_id or "",
                    actor,
                    ev.observed_at,
                    encode_event(ev).decode(),
                    md.partition,
                    md.offset,
                ]
            )
        await self.ch.insert(
            "board_outbox",
            rows,
            column_names=[
                "event_id",
                "type",
                "contest_id",
                "round_id",
                "contestant_id",
                "actor",
                "produced_at",
                "payload",
                "kafka_partition",
                "kafka_offset",
            ],
            settings={"async_insert": 0},
        )
        return sent
