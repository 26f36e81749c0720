"""The detector's status server: ``/healthz`` (liveness by progress, as the scorer's) and ``/metrics``.

Settings are ``LIVEBOARD_ANOMALIES_*`` variables (``AnomaliesSettings``): the server binds
``LIVEBOARD_ANOMALIES_STATUS_HOST`` (127.0.0.1; 0.0.0.0 in the manifests) on ``LIVEBOARD_ANOMALIES_STATUS_PORT``
(8083; 0 = any free port, as the tests use). ``/healthz`` answers 503 once the log has lag and no partition
advanced for ``LIVEBOARD_ANOMALIES_STALL_AFTER_S``, or the read loop stopped turning for that long.

The metrics (``liveboard_anomalies_<what>_<unit>``) live in the runner's own registry, not the process-wide one:
the detector's page carries only the detector's series (and the process collector's), whatever else a test or
an embedding process imported. The scorer's web.py is not reused because it updates the scorer's own
progress gauge (services/scoring/metrics.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    generate_latest,
)
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)


class AnomaliesSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVEBOARD_ANOMALIES_",
        env_file=os.environ.get("LIVEBOARD_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    status_host: str = Field("127.0.0.1", description="address of /healthz and /metrics (0.0.0.0 in a pod)")
    status_port: int = Field(8083, ge=0, le=65535, description="port of /healthz and /metrics (0 = any free port)")
    stall_after_s: float = Field(
        300.0, gt=0, description="/healthz fails when lag > 0 and no partition advanced for this long"
    )


class DetectorMetrics:
    """The detector's series, in a registry of their own (one per runner)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        self.records = Counter("liveboard_anomalies_records_read_total", "Records read from lb.events.v1", registry=r)
        self.recorded = Counter(
            "liveboard_anomalies_recorded_total",
            "anomaly_detected events produced, by detector (re-found after a restart: same event ids)",
            ["detector"],
            registry=r,
        )
        self.errors = Counter(
            "liveboard_anomalies_errors_total",
            "Errors by stage: parse (an undecodable record, skipped), step (the read loop failed; the process stops)",
            ["stage"],
            registry=r,
        )
        self.lag = Gauge(
            "liveboard_anomalies_consumer_lag_messages",
            "High watermark minus the next offset the detector will read, per partition",
            ["partition"],
            registry=r,
        )
        self.last_record = Gauge(
            "liveboard_anomalies_last_record_timestamp_seconds",
            "Broker timestamp of the last record read (processing lag = now - this while there is lag)",
            registry=r,
        )
        self.progress = Gauge(
            "liveboard_anomalies_last_progress_timestamp_seconds",
            "When the read loop last advanced a partition or found no lag (unix seconds)",
            registry=r,
        )
        self.caught_up = Gauge(
            "liveboard_anomalies_caught_up_bool",
            "1 once the log as it was at start has been read (the detector's state is rebuilt)",
            registry=r,
        )
        for stage in ("parse", "step"):
            self.errors.labels(stage)


class Progress:
    """Healthy while the loop turns and either nothing waits or some partition advanced within ``stall_after_s``."""

    def __init__(self, stall_after_s: float, gauge: Gauge) -> None:
        self.stall_after_s = stall_after_s
        self.gauge = gauge
        self.last_progress = time.monotonic()  # a start-up grace of stall_after_s while connecting
        self.positions: dict[int, int] = {}
        self.lags: dict[int, int] = {}
        gauge.set(time.time())

    def observe(self, positions: dict[int, int], lags: dict[int, int]) -> None:
        advanced = any(positions.get(p, -1) > self.positions.get(p, -1) for p in positions)
        if advanced or not any(lags.values()):
            self.last_progress = time.monotonic()
            self.gauge.set(time.time())
        self.positions = dict(positions)
        self.lags = dict(lags)

    def healthy(self) -> bool:
        return time.monotonic() - self.last_progress < self.stall_after_s


class StatusServer:
    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, progress: Progress, extra: Callable[[], dict[str, Any]]
    ) -> None:  # fmt: skip
        self.host = host
        self.port = port
        self.registry = registry
        self.progress = progress
        self.extra = extra
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]
        log.info("status server listening", extra={"fields": {"host": self.host, "port": self.port}})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        healthy = self.progress.healthy()
        doc = {
            "status": "ok" if healthy else "stalled",
            "seconds_since_progress": round(time.monotonic() - self.progress.last_progress, 3),
            "lag": {str(p): n for p, n in sorted(self.progress.lags.items())},
            **self.extra(),
        }
        return web.Response(body=orjson.dumps(doc), status=200 if healthy else 503, content_type="application/json")
