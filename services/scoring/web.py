"""The scorer's HTTP endpoints: ``/metrics`` (Prometheus) and ``/healthz`` (liveness by progress).

faust agents can stop silently after broker trouble while the process stays up (dev-stack.md), so
liveness is judged by consumption: healthy while the lag is zero or some partition advanced within
``LIVEBOARD_SCORER_STALL_AFTER_S``. Rebuilding state from the archive at start counts as progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from services.scoring import metrics as m

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Tracks whether consumption moves: call ``observe`` with positions and lags every few seconds."""

    stall_after_s: float
    last_progress: float = field(default_factory=time.monotonic)
    positions: dict[int, int] = field(default_factory=dict)
    lags: dict[int, int] = field(default_factory=dict)
    rebuilding: bool = True

    def observe(self, positions: dict[int, int], lags: dict[int, int]) -> None:
        now = time.monotonic()
        advanced = any(positions.get(p, -1) > self.positions.get(p, -1) for p in positions)
        if advanced or not any(lags.values()) or self.rebuilding:
            self.last_progress = now
            m.PROGRESS.set(time.time())
        self.positions = dict(positions)
        self.lags = dict(lags)

    def healthy(self) -> bool:
        return time.monotonic() - self.last_progress < self.stall_after_s

    def doc(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy() else "stalled",
            "seconds_since_progress": round(time.monotonic() - self.last_progress, 3),
            "lag": {str(p): n for p, n in sorted(self.lags.items())},
            "rebuilding": self.rebuilding,
            **extra,
        }


class StatusServer:
    def __init__(self, host: str, port: int, progress: Progress, extra: Callable[[], dict[str, Any]]) -> None:
        self.host = host
        self.port = port
        self.progress = progress
        self.extra = extra
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("status server listening", extra={"fields": {"host": self.host, "port": self.port}})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        doc = self.progress.doc(self.extra())
        return web.Response(
            body=orjson.dumps(doc),
            status=200 if self.progress.healthy() else 503,
            content_type="application/json",
        )
