"""The faust app of the scorer (``liveboard score run``).

The faust App (``faust_settings``: ``at_least_once``, the broker cannot do transactions) runs the worker:
lifecycle, signals, the processor's loops, the producer and the status server. No faust tables: state is
rebuilt from the ClickHouse archive at start (dev-stack.md: table recovery can hang), then kept in memory.

How ``lb.events.v1`` and ``lb.dlq.v1`` are read (``LIVEBOARD_SCORER_INTAKE``):

- ``direct`` (default): one aiokafka consumer in the scorer's group, read in batches (``getmany``);
  after a flush has written a batch to ClickHouse, exactly its offsets are committed. Measured reasons
  it is the default (docs/scoring.md): faust's ``Stream.take_events`` acknowledges a batch as soon as the
  agent returns from it, before any write; faust acknowledges messages it *skips* during a rebalance
  (so they can be committed before their re-delivered copies are written); and faust hands over one
  message at a time at ~100–250 µs each on the dev machine, far from the throughput target.
- ``faust``: agents ``score_events`` and ``dead_letters`` on ``noack`` streams, event by event,
  acknowledged after the write — correct outside rebalances, slow; kept for comparison.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any

import faust
import faust.app.base
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from liveboard.kafka.catalog import DLQ, EVENTS, FREEZE_REQUESTS
from liveboard.kafka.clients import faust_settings, make_consumer, make_producer
from liveboard.kafka.gaps import GapGuard, expect_committed
from liveboard.settings import Settings
from services.scoring import metrics as m
from services.scoring.batch import Record
from services.scoring.config import ScorerSettings
from services.scoring.contests import load_plans
from services.scoring.processor import Scorer
from services.scoring.web import Progress, StatusServer

log = logging.getLogger(__name__)


class ScorerApp(faust.App):
    """A faust App that also runs the scorer's processor, producer and status server."""

    # Attribute names stay clear of faust.App's own (producer, consumer, conf, ...).
    scorer: Scorer
    lb_settings: Settings
    lb_cfg: ScorerSettings
    lb_progress: Progress
    lb_status: StatusServer
    lb_producer: AIOKafkaProducer | None = None
    lb_tasks: list[asyncio.Task[Any]]

    async def on_start(self) -> None:
        await super().on_start()
        await self.lb_status.start()
        self.lb_producer = make_producer(self.lb_settings, client_id=f"{self.lb_cfg.app_id}-producer", linger_ms=2)
        await self.lb_producer.start()
        self.lb_tasks.append(asyncio.create_task(self._boot(), name="scorer-boot"))
        self.lb_tasks.append(asyncio.create_task(self._watch(), name="scorer-status"))

    async def _boot(self) -> None:
        await self.scorer.start(self.lb_producer)
        self.lb_progress.rebuilding = False

    async def on_stop(self) -> None:
        try:
            for t in self.lb_tasks:
                t.cancel()
            if self.scorer.ready.is_set():
                await self.scorer.stop()
            if self.lb_producer is not None:
                await self.lb_producer.stop()
            await self.lb_status.stop()
        finally:
            await super().on_stop()

    # ----------------------------------------------------------------------------------- status

    def _kafka(self) -> Any:
        """The consumer that holds lb.events.v1: faust's, or the direct intake's."""
        return getattr(self, "_consumer_override", None) or self.consumer

    def _partitions(self) -> list[int]:
        try:
            return sorted(tp.partition for tp in self._kafka().assignment() if tp.topic == self.scorer.events_topic)
        except Exception:
            return []

    def _highwater(self, p: int) -> int | None:
        try:
            hw = self._kafka().highwater(TopicPartition(self.scorer.events_topic, p))
        except Exception:
            return None
        return hw if hw is not None and hw >= 0 else None

    async def _topic_size(self) -> int | None:
        kafka = self._kafka()
        try:
            if isinstance(kafka, AIOKafkaConsumer):
                parts = kafka.partitions_for_topic(self.scorer.events_topic)
            else:
                parts = await kafka.topic_partitions(self.scorer.events_topic)
        except Exception:
            return None
        return len(parts) if parts else None

    async def _watch(self) -> None:
        """Every second: lag per partition, progress for /healthz, whether we hold every partition."""
        total: int | None = None
        while True:
            await asyncio.sleep(1.0)
            parts = self._partitions()
            if total is None or not parts:
                total = await self._topic_size()
            committed_map = getattr(self._kafka(), "_committed_offset", None)
            if parts and committed_map is not None:
                for p in parts:
                    if p not in self.scorer.positions:
                        committed = committed_map.get(TopicPartition(self.scorer.events_topic, p))
                        if committed is not None:
                            self.scorer.positions.setdefault(p, committed)
            lags = self.scorer.lag(self._highwater, parts)
            for p, n in lags.items():
                m.LAG.labels(self.scorer.events_topic, str(p)).set(n)
                m.POSITION.labels(self.scorer.events_topic, str(p)).set(self.scorer.positions.get(p, 0))
            m.ASSIGNED.set(len(parts))
            holds_all = bool(parts) and (total is None or len(parts) >= total)
            if parts and holds_all != self.scorer.all_partitions:
                log.log(
                    logging.INFO if holds_all else logging.ERROR,
                    "partition assignment changed",
                    extra={"fields": {"assigned": parts, "topic_partitions": total, "scoring": holds_all}},
                )
            if parts:
                self.scorer.all_partitions = holds_all
            self.scorer.behind = sum(lags.values()) > 4 * self.lb_cfg.batch_max
            self.lb_progress.observe({p: self.scorer.positions.get(p, -1) for p in parts}, lags)


def create_app(settings: Settings, cfg: ScorerSettings) -> ScorerApp:
    plans = load_plans(cfg)
    datadir = Path(cfg.data_dir or Path(settings.home) / "scorer")
    datadir.mkdir(parents=True, exist_ok=True)
    app_id = cfg.app_id if cfg.intake == "faust" else f"{cfg.app_id}-shell"
    app = ScorerApp(
        app_id,
        datadir=str(datadir),
        store="memory://",
        **faust_settings(
            settings,
            # commit acknowledged offsets promptly: acks only come after the ClickHouse write
            broker_commit_interval=1.0,
            broker_commit_every=10_000,
            broker_max_poll_records=5000,
            stream_buffer_maxsize=max(cfg.batch_max * 2, 4096),
            # a revoked partition's unacknowledged events are simply re-read by its next owner
            stream_wait_empty=False,
            # while ClickHouse is down the agents wait (back-pressure); stay in the group meanwhile
            broker_max_poll_interval=3600.0,
            # no leader topic: the scorer has no agent that needs a leader (lb.events.v1 is read by the direct
            # intake, or by agents on every worker); it was created outside the topic catalog and only cost
            topic_disable_leader=True,
        ),
    )
    app.lb_settings = settings
    app.lb_cfg = cfg
    app.lb_tasks = []
    app.scorer = Scorer(settings, cfg, plans)
    app.lb_progress = Progress(cfg.stall_after_s)
    status_host = settings.scorer_host or settings.host  # LIVEBOARD_SCORER_HOST; 0.0.0.0 in the manifests
    app.lb_status = StatusServer(status_host, settings.scorer_port, app.lb_progress, lambda: _status_extra(app))
    if cfg.intake == "faust":
        # faust 0.15.3 drops input fetched while a worker finishes recovery (docs/scoring.md): say so loudly
        log.error(
            "the faust intake can lose events after a start or a rebalance; use the direct intake for a contest "
            "that counts",
            extra={"fields": {"intake": "faust", "see": "docs/scoring.md"}},
        )
        _faust_intake(app)
    else:
        # faust's own consumer has nothing to read here (the direct intake holds lb.events.v1 and lb.dlq.v1):
        # without this it joined a group of its own for nothing, and with the leader topic disabled it had no
        # topic at all
        app.boot_strategy = faust.app.base.BootStrategy(app, enable_kafka_consumer=False)
        _direct_intake(app)
    return app


def _status_extra(app: ScorerApp) -> dict[str, Any]:
    s = app.scorer
    return {
        "ready": s.ready.is_set(),
        "clickhouse_failing": s.flush_failing,
        "holds_all_partitions": s.all_partitions,
        "processed": s.processed,
        "pending_rows": s.pending_rows(),
    }


def _faust_intake(app: ScorerApp) -> None:
    settings, scorer = app.lb_settings, app.scorer
    events = app.topic(settings.topic(EVENTS), key_serializer="raw", value_serializer="raw")
    dlq = app.topic(settings.topic(DLQ), key_serializer="raw", value_serializer="raw")
    streams: dict[str, Any] = {}

    async def ack(name: str, records: list[Record]) -> None:
        stream = streams[name]
        for rec in records:
            await stream.ack(rec.handle)

    async def ack_events(records: list[Record]) -> None:
        await ack("events", records)

    async def ack_dlq(records: list[Record]) -> None:
        await ack("dlq", records)

    scorer.register_acker("events", ack_events)
    scorer.register_acker("dlq", ack_dlq)

    # Not take_events(): it acknowledges a batch as soon as the agent has looked at it, before the write.
    # A noack stream, iterated event by event, acknowledges nothing by itself; the flush does it.
    @app.agent(events, name="score_events")
    async def score_events(stream: Any) -> None:
        s = stream.noack()
        streams["events"] = s
        async for e in s.events():
            m_ = e.message
            await scorer.handle_events("events", [Record(m_.topic, m_.partition, m_.offset, e.value, e)])

    @app.agent(dlq, name="dead_letters")
    async def dead_letters(stream: Any) -> None:
        s = stream.noack()
        streams["dlq"] = s
        async for e in s.events():
            m_ = e.message
            await scorer.handle_dead_letters("dlq", [Record(m_.topic, m_.partition, m_.offset, e.value, e)])


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, scorer: Scorer, consumer_ref: list[AIOKafkaConsumer], guard: GapGuard | None = None) -> None:
        self.scorer = scorer
        self.consumer_ref = consumer_ref
        self.guard = guard

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Acknowledge what is written before giving partitions away; the rest is re-read by the next owner.
        try:
            await asyncio.wait_for(self.scorer.flush(final=True), timeout=10)
        except Exception as exc:
            log.warning("flush before rebalance failed", extra={"fields": {"error": repr(exc)}})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self.consumer_ref[0]
        if self.guard is not None:  # positions come from the group's commits now, not from what was read
            self.guard.forget()
            await expect_committed(self.guard, consumer, list(assigned))
        for tp in assigned:
            if tp.topic == self.scorer.events_topic:
                committed = await consumer.committed(tp)
                self.scorer.positions[tp.partition] = committed or 0
                self.scorer.start_offsets[tp.partition] = committed or 0


async def _assign_all(
    consumer: AIOKafkaConsumer, scorer: Scorer, topics: list[str], optional: tuple[str, ...] = ()
) -> None:
    """Explicit assignment: every partition of ``topics``, reading on from the group's committed offsets.

    No group join and no rebalance: a scorer restarted after a crash reads again as soon as it has rebuilt
    its state (a new member of a group waits for the dead one's session to expire first). ``optional``
    topics are read too when they exist (a deployment whose catalog was not ensured yet goes on without)."""
    tps: list[TopicPartition] = []
    delay = 0.05
    while True:
        missing = [t for t in topics if not consumer.partitions_for_topic(t)]
        if not missing:
            break
        log.info("waiting for the topics' metadata", extra={"fields": {"topics": missing}})
        await consumer._client.force_metadata_update()
        if [t for t in topics if not consumer.partitions_for_topic(t)]:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    for t in optional:
        if consumer.partitions_for_topic(t):
            topics = [*topics, t]
        else:
            log.warning("topic missing: not read (run `liveboard topics ensure`)", extra={"fields": {"topic": t}})
    for t in topics:
        tps.extend(TopicPartition(t, p) for p in sorted(consumer.partitions_for_topic(t) or ()))
    consumer.assign(tps)
    for tp in tps:
        if tp.topic == scorer.events_topic:
            scorer.positions[tp.partition] = scorer.start_offsets[tp.partition] = await consumer.committed(tp) or 0
    log.info(
        "partitions assigned explicitly",
        extra={"fields": {"partitions": {t: sum(1 for tp in tps if tp.topic == t) for t in topics}}},
    )


def _direct_intake(app: ScorerApp) -> None:
    """One aiokafka consumer (group = app id) for both topics, getmany batches, commit after the flush.

    Its partitions: all of them, assigned explicitly (default), or the group's share (``assignment``)."""
    settings, cfg, scorer = app.lb_settings, app.lb_cfg, app.scorer
    events_topic, dlq_topic = settings.topic(EVENTS), settings.topic(DLQ)
    freeze_topic = settings.topic(FREEZE_REQUESTS)
    ref: list[AIOKafkaConsumer] = []

    async def commit(records: list[Record]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            offsets[tp] = max(offsets.get(tp, 0), rec.offset + 1)
        if offsets and ref:
            try:
                await ref[0].commit(offsets)
            except Exception as exc:
                log.warning("offset commit failed", extra={"fields": {"error": repr(exc)[:200]}})

    scorer.register_acker("direct", commit)

    async def log_end() -> dict[int, int]:
        """The end of lb.events.v1 now, per partition (what a freeze requested now must include)."""
        consumer = ref[0]
        tps = [TopicPartition(events_topic, p) for p in sorted(consumer.partitions_for_topic(events_topic) or ())]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: int(off) for tp, off in ends.items()}

    scorer.desk.log_end = log_end
    scorer.desk.archived = scorer.archived_offsets

    @app.task
    async def direct_consume() -> None:
        await scorer.ready.wait()
        consumer = make_consumer(
            settings,
            group_id=cfg.app_id,
            client_id=f"{cfg.app_id}-direct",
            max_poll_records=cfg.batch_max,
            fetch_max_wait_ms=max(cfg.batch_within_ms, 5),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # while ClickHouse is down the intake waits (back-pressure) instead of polling; stay in the group
            max_poll_interval_ms=3_600_000,
        )
        ref.append(consumer)
        # never past a hole at the head of a partition (liveboard/kafka/gaps.py): an event the intake never
        # returned would be missing from the archive below a committed offset
        guard = GapGuard(consumer)
        if cfg.assignment == "group":
            consumer.subscribe([events_topic, dlq_topic, freeze_topic], listener=_Assignments(scorer, ref, guard))
            await consumer.start()
        else:
            await consumer.start()
            await _assign_all(consumer, scorer, [events_topic, dlq_topic], optional=(freeze_topic,))
            await expect_committed(guard, consumer)
        app._consumer_override = consumer  # type: ignore[attr-defined]
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=cfg.batch_max)
                for tp, msgs in batches.items():
                    msgs = guard.take(tp, msgs)
                    if not msgs:
                        continue
                    records = [Record(tp.topic, tp.partition, r.offset, r.value) for r in msgs]
                    if tp.topic == events_topic:
                        await scorer.handle_events("direct", records)
                    elif tp.topic == freeze_topic:
                        # acted on one at a time by the freeze desk; each committed once it is answered
                        for rec in records:
                            scorer.desk.submit(rec.value, functools.partial(commit, [rec]))
                    else:
                        await scorer.handle_dead_letters("direct", records)
        finally:
            await consumer.stop()
