"""The ingest process: platform collectors, their webhook routes, ``/metrics`` and ``/healthz``."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from liveboard.kafka.registrations import follow_registrations
from liveboard.settings import Settings
from services.ingest import metrics as m
from services.ingest import metrics_relay
from services.ingest.base import PlatformCollector
from services.ingest.clock import Clock, WallClock
from services.ingest.config import IngestSettings, PlatformsConfig
from services.ingest.producer import EventProducer
from services.ingest.registry import Registry
from services.ingest.shared import SharedState

# a webhook worker reports the poller as failing when its status file is older than this (wall seconds)
STATUS_STALE_S = 15.0
# how long start() waits for the registrations topic to be read before serving anyway
REGISTRATIONS_CATCH_UP_S = 30.0

log = logging.getLogger(__name__)


def _collector_class(platform: str) -> type[PlatformCollector]:
    if platform == "wechat_channels":
        from services.ingest.wechat.poller import WeChatCollector

        return WeChatCollector
    if platform == "douyin":
        from services.ingest.douyin.poller import DouyinCollector

        return DouyinCollector
    from services.ingest.kuaishou.poller import KuaishouCollector

    return KuaishouCollector


class Collector:
    def __init__(
        self,
        settings: Settings,
        ingest: IngestSettings,
        platforms: PlatformsConfig,
        registry: Registry,
        *,
        clock: Clock | None = None,
        enabled: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        follow_account_bound: bool = True,
        role: str = "all",
        state_dir: Path | None = None,
        redrive: bool = True,
    ) -> None:
        """``role``: ``all`` (one process polls and serves the webhooks), or, with ``state_dir`` shared
        between processes (services/ingest/workers.py), ``poller`` (schedulers only, no HTTP; writes its
        status for the workers) or ``webhooks`` (one of N processes serving the webhook port)."""
        if role not in ("all", "poller", "webhooks"):
            raise ValueError(f"unknown role {role!r}")
        if role != "all" and state_dir is None:
            raise ValueError(f"role {role!r} needs a state_dir shared with the other processes")
        self.role = role
        self.state_dir = state_dir
        self.state: SharedState | None = None
        self.settings = settings
        self.ingest = ingest
        self.platforms_cfg = platforms
        self.registry = registry
        self.clock: Clock = clock or WallClock()
        self.enabled = [p for p in (enabled or platforms.enabled()) if getattr(platforms, p, None) is not None]
        self.host = host
        self.port = settings.ingest_port if port is None else port
        self.follow_account_bound = follow_account_bound
        self.redrive = redrive  # consume lb.redrive.v1 (services/ingest/redrive.py); not in webhook workers
        self.producer = EventProducer(
            settings,
            linger_ms=ingest.linger_ms,
            compression=None if ingest.compression == "none" else ingest.compression,
        )
        self.collectors: dict[str, PlatformCollector] = {}
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._freshness: m.FreshnessCollector | None = None
        self._metrics_server: asyncio.AbstractServer | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        await self.producer.start()
        if self.follow_account_bound:
            # registrations first: a push for an account bound by an import is not refused while we catch up
            await self._start_registrations()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300))
        if self.state_dir is not None:
            self.state = SharedState(self.state_dir / "state.sqlite3")
        for p in self.enabled:
            cls = _collector_class(p)
            self.collectors[p] = cls(
                getattr(self.platforms_cfg, p), self.ingest, self.clock, self.producer, self.registry, self._session
            )
            if self.state is not None:
                self.collectors[p].use_shared(self.state)
        if self.role != "poller":
            await self._serve()
        if self.role != "webhooks":
            self._freshness = m.FreshnessCollector(self.clock.now_ms, self._fresh_rows)
            m.REGISTRY.register(self._freshness)
        for p, c in self.collectors.items():
            if self.role == "webhooks":
                self._tasks[p] = asyncio.create_task(c.run_background(), name=f"webhooks-{p}")
            else:
                c.sync_accounts()
                self._tasks[p] = asyncio.create_task(c.run(), name=f"collector-{p}")
        if self.role == "poller":
            self._tasks["status"] = asyncio.create_task(self._status_loop(), name="status")
            if m.multiprocess_dir() and self.state_dir is not None:
                # the workers' /metrics, rendered here where no push waits (services/ingest/metrics_relay.py)
                self._metrics_server = await metrics_relay.serve(
                    self.state_dir / metrics_relay.SOCKET_NAME, lambda: generate_latest(self._metrics_registry())
                )
        if self.redrive and self.role != "webhooks":
            from services.ingest.redrive import Redriver

            self.redriver = Redriver(self)
            self._tasks["redrive"] = asyncio.create_task(self.redriver.run(), name="redrive")
        log.info(
            "ingest started",
            extra={
                "fields": {
                    "role": self.role,
                    "url": self.url,
                    "platforms": self.enabled,
                    "contests": self.registry.contests(),
                }
            },
        )

    async def _serve(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        for c in self.collectors.values():
            app.add_routes(c.routes())
        app.add_routes([web.get("/metrics", self._metrics), web.get("/healthz", self._healthz)])
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=30.0)
        await self._runner.setup()
        # webhook workers share the port (SO_REUSEPORT): the kernel spreads new connections over them
        site = web.TCPSite(
            self._runner, self.host, self.port, reuse_address=True, reuse_port=self.role == "webhooks", backlog=1024
        )
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _fresh_rows(self):  # type: ignore[no-untyped-def]
        for c in self.collectors.values():
            yield from c.freshness()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for t in self._tasks.values():
            t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        if self._metrics_server is not None:
            self._metrics_server.close()
            self._metrics_server = None
            if self.state_dir is not None:
                metrics_relay.remove(self.state_dir / metrics_relay.SOCKET_NAME)
        if self._runner is not None:
            await self._runner.cleanup()  # stops accepting, lets the handlers in flight answer
        if self._session is not None:
            await self._session.close()
        if self._freshness is not None:
            m.REGISTRY.unregister(self._freshness)
            self._freshness = None
        await self.producer.stop()
        if self.state is not None:
            self.state.close()

    async def idle(self) -> None:
        """Wait for queued post-acknowledgement work and flush the producer (tests, shutdown)."""
        for c in self.collectors.values():
            await c.idle()
        await self.producer.flush()

    async def heartbeat(self) -> None:
        for c in self.collectors.values():
            await c.heartbeat()

    # -- account_bound -----------------------------------------------------------------------------

    async def _start_registrations(self) -> None:
        """Follow lb.registrations.v1 and wait (up to REGISTRATIONS_CATCH_UP_S) until what it held at start
        is applied, so the first pushes already see every binding."""
        caught_up = asyncio.Event()
        task = asyncio.create_task(self._follow_account_bound(caught_up), name="account_bound")
        self._tasks["account_bound"] = task
        waiter = asyncio.create_task(caught_up.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=REGISTRATIONS_CATCH_UP_S, return_when="FIRST_COMPLETED")
        waiter.cancel()
        if task in done:
            task.result()  # raises what stopped it (no such topic: `liveboard topics ensure`)
        elif not done:
            log.warning(
                "registrations not caught up yet; continuing", extra={"fields": {"after_s": REGISTRATIONS_CATCH_UP_S}}
            )

    async def _follow_account_bound(self, caught_up: asyncio.Event | None = None) -> None:
        """Apply the ``account_bound`` events of our contests from lb.registrations.v1 (a few records, not the
        whole event log: liveboard/kafka/registrations.py), from the beginning, then as they come."""
        await follow_registrations(self.settings, self.registry.apply_event, caught_up)

    # -- HTTP --------------------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        rendered_by = "self"
        if m.multiprocess_dir():
            # A scrape adds up every process's sample files plus one series per tracked room (~0.25 s of CPU):
            # the polling process renders it, a webhook worker only relays the bytes
            # (services/ingest/metrics_relay.py: rendered here, on the loop or in a thread, it stalled this
            # worker's pushes for as long)
            body = None
            if self.role == "webhooks" and self.state_dir is not None:
                body = await metrics_relay.fetch(self.state_dir / metrics_relay.SOCKET_NAME)
                rendered_by = "poller"
            if body is None:  # the poller is away (restarting): render here rather than fail the scrape
                body = await asyncio.to_thread(generate_latest, self._metrics_registry())
                rendered_by = "self"
        else:  # one process: the room series read the pollers' live state, so on the loop
            body = generate_latest(self._metrics_registry())
        return web.Response(
            body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "X-Liveboard-Metrics-Rendered-By": rendered_by}
        )

    def _metrics_registry(self) -> CollectorRegistry:
        if not m.multiprocess_dir():
            return m.REGISTRY
        # every process of this collector (poller and workers) writes its samples to the shared directory;
        # whichever worker the scrape lands on adds them all up, plus the rooms' data ages from the poller
        from prometheus_client import multiprocess

        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        # the rooms' data ages: the poller's own live state, or (a worker) the poller's status file
        rows = self._status_rows if self.role == "webhooks" else self._fresh_rows
        reg.register(m.FreshnessCollector(self.clock.now_ms, rows))
        return reg

    def _status(self) -> dict[str, Any]:
        assert self.state_dir is not None
        try:
            return orjson.loads((self.state_dir / "status.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}

    def _status_rows(self):  # type: ignore[no-untyped-def]
        yield from self._status().get("rooms", [])

    def _platform_health(self) -> dict[str, Any]:
        now = self.clock.now_ms()
        out = {}
        for p, c in self.collectors.items():
            ages = [now - st.last_observed for st in c.rooms.values() if st.last_observed and not st.final_emitted]
            out[p] = {
                "accounts": len(c._accounts),
                "rooms_tracked": sum(1 for st in c.rooms.values() if not st.final_emitted),
                "poll_runs": c.scheduler.runs,
                "poll_errors": c.scheduler.errors,
                "max_data_age_s": round(max(ages, default=0) / 1000, 1),
            }
        return out

    async def _status_loop(self) -> None:
        """The poller's state for the webhook workers' /healthz and /metrics (written atomically)."""
        assert self.state_dir is not None
        path = self.state_dir / "status.json"
        while True:
            dead = [name for name, t in self._tasks.items() if t.done() and name != "status"]
            doc = {
                "wall": time.time(),
                "pid": os.getpid(),
                "dead_tasks": dead,
                "platforms": self._platform_health(),
                "rooms": [list(r) for r in self._fresh_rows()],
            }
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(orjson.dumps(doc))
            os.replace(tmp, path)
            await asyncio.sleep(1.0)

    async def _healthz(self, request: web.Request) -> web.Response:
        dead = [name for name, t in self._tasks.items() if t.done()]
        body: dict[str, Any] = {"status": "ok", "dead_tasks": dead, "platforms": {}}
        if self.role == "webhooks":
            st = self._status()
            age = time.time() - st.get("wall", 0)
            body["platforms"] = st.get("platforms", {})
            body["poller"] = {"pid": st.get("pid"), "status_age_s": round(age, 1), "dead_tasks": st.get("dead_tasks")}
            body["worker_pid"] = os.getpid()
            if age > STATUS_STALE_S or st.get("dead_tasks"):
                dead = [*dead, "poller"]
        else:
            body["platforms"] = self._platform_health()
        if dead:
            body["status"] = "failing"
            body["dead_tasks"] = dead
        return web.json_response(body, status=200 if not dead else 503)
