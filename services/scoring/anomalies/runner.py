"""The detector as a process: a small aiokafka consumer of lb.events.v1 with its own group
(``liveboard-anomalies``) that produces ``anomaly_detected`` events back onto lb.events.v1.

On start it reads the log from the beginning (its state is a fold of the whole log, so a restart rebuilds it
instead of trusting a half-remembered state) and commits its positions as it goes, so its lag is visible like
any consumer group's. Anomalies re-found after a restart have the same event ids and are dropped downstream
like any re-delivery (the archive keeps one row per event id). Advisory: a crash costs an alert, never a
result.

While it runs it serves ``/healthz`` (progress-based, as the scorer's) and ``/metrics`` on
``LIVEBOARD_ANOMALIES_STATUS_PORT`` (status.py), so probes and Prometheus see a stalled or dead detector.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.structs import TopicPartition

from liveboard.contracts import encode_event, parse_event
from liveboard.errors import LiveboardError
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.settings import Settings
from services.scoring.anomalies.detectors import Detector, Thresholds
from services.scoring.anomalies.status import AnomaliesSettings, DetectorMetrics, Progress, StatusServer

log = logging.getLogger(__name__)

GROUP_ID = "liveboard-anomalies"


class AnomalyRunner:
    def __init__(
        self, settings: Settings, thresholds: Thresholds | None = None, group_id: str = GROUP_ID,
        contests: tuple[Any, ...] = (), status: AnomaliesSettings | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.status_settings = status or AnomaliesSettings()
        self.metrics = DetectorMetrics()
        self.progress = Progress(self.status_settings.stall_after_s, self.metrics.progress)
        self.status: StatusServer | None = None
        self.detector = Detector(thresholds)
        for contest in contests:  # the contest files' own slot schedules (outside_slot)
            self.detector.add_contest(contest)
        self.group_id = group_id
        self.consumer: Any = None
        self.producer: Any = None
        self.found = 0
        self.read = 0
        self.ready = asyncio.Event()  # set once the log up to its end at start has been read

    async def start(self) -> None:
        topic = self.settings.topic(EVENTS)
        self.consumer = make_consumer(
            self.settings, group_id=self.group_id, client_id="liveboard-anomalies", fetch_max_wait_ms=200
        )
        await self.consumer.start()
        parts: set[int] | None = None
        for _ in range(100):
            await self.consumer.topics()
            parts = self.consumer.partitions_for_topic(topic)
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            await self.consumer.stop()
            raise LiveboardError(f"topic {topic} does not exist (run `liveboard topics ensure`)")
        self.tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(self.tps)
        await self.consumer.seek_to_beginning(*self.tps)
        self.start_end = await self.consumer.end_offsets(self.tps)
        self.producer = make_producer(self.settings, client_id="liveboard-anomalies", linger_ms=5)
        await self.producer.start()

    async def stop(self) -> None:
        for closer in (self.consumer.stop if self.consumer else None, self.producer.stop if self.producer else None):
            if closer is not None:
                try:
                    await closer()
                except Exception:  # stopping anyway
                    log.debug("close failed", exc_info=True)

    async def step(self, timeout_ms: int = 500) -> int:
        """Read one batch, produce what it reveals; the number of anomalies found."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=5_000)
        found = []
        for records in batch.values():
            for msg in records:
                self.read += 1
                self.metrics.records.inc()
                self.metrics.last_record.set(msg.timestamp / 1000)
                try:
                    ev = parse_event(msg.value)
                except Exception:  # the scorer dead-letters bad records; the detector just skips them
                    self.metrics.errors.labels("parse").inc()
                    continue
                found += self.detector.feed(ev)
        topic = self.settings.topic(EVENTS)
        futures = []
        for ev in found:
            key = f"{ev.contest_id}:{ev.contestant_id}".encode()
            headers = [("type", ev.type.encode()), ("schema_version", str(ev.schema_version).encode())]
            futures.append(await self.producer.send(topic, encode_event(ev), key=key, headers=headers))
            log.info(
                "anomaly detected",
                extra={
                    "fields": {
                        "detector": ev.data.detector,
                        "contestant_id": ev.contestant_id,
                        "anomaly_id": ev.data.anomaly_id,
                    }
                },
            )
        for f in futures:
            await f
        for ev in found:
            self.metrics.recorded.labels(ev.data.detector).inc()
        positions = {tp: await self.consumer.position(tp) for tp in self.tps}
        if batch:
            await self.consumer.commit(positions)
        if not self.ready.is_set():
            if all(positions[tp] >= off for tp, off in self.start_end.items()):
                self.ready.set()
                self.metrics.caught_up.set(1)
        lags = {}
        for tp, pos in positions.items():
            high = self.consumer.highwater(tp)  # from the last fetch response; the end at start until then
            lags[tp.partition] = max(0, (high if high is not None else self.start_end[tp]) - pos)
            self.metrics.lag.labels(str(tp.partition)).set(lags[tp.partition])
        self.progress.observe({tp.partition: pos for tp, pos in positions.items()}, lags)
        self.found += len(found)
        return len(found)

    def status_doc(self) -> dict[str, Any]:
        return {"group_id": self.group_id, "caught_up": self.ready.is_set(), "read": self.read, "found": self.found}

    async def start_status(self) -> None:
        """Serve /healthz and /metrics. A busy port is logged, not fatal: the detector's alerts matter more than
        its probe (in a pod the failing probe then restarts it, which surfaces the clash)."""
        cfg = self.status_settings
        server = StatusServer(cfg.status_host, cfg.status_port, self.metrics.registry, self.progress, self.status_doc)
        try:
            await server.start()
        except OSError as e:
            log.error(
                "status server could not start; detecting without /healthz and /metrics",
                extra={"fields": {"host": cfg.status_host, "port": cfg.status_port, "error": str(e)}},
            )
            return
        self.status = server

    async def run(self, stop: asyncio.Event | None = None) -> None:
        await self.start_status()
        try:
            await self._run(stop)
        finally:
            if self.status is not None:
                await self.status.stop()

    async def _run(self, stop: asyncio.Event | None) -> None:
        await self.start()
        last_log = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                try:
                    await self.step()
                except Exception:
                    self.metrics.errors.labels("step").inc()
                    log.exception("anomalies: the read loop failed; stopping")
                    raise
                if time.monotonic() - last_log > 60:
                    last_log = time.monotonic()
                    log.info("anomalies: progress", extra={"fields": {"read": self.read, "found": self.found}})
        finally:
            await self.stop()
