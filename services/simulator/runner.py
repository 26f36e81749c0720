"""Runs the three platform simulators on local ports and pushes their webhooks at a collector.

Used by ``liveboard simulate`` and by the tests (which share the :class:`SimClock` with the collector so a
whole contest runs in seconds).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from services.simulator.base import PlatformSim, Pusher
from services.simulator.clock import SimClock
from services.simulator.credentials import platform_config
from services.simulator.douyin import DouyinSim
from services.simulator.faults import FaultPlan
from services.simulator.kuaishou import KuaishouSim
from services.simulator.scenario import Scenario, ScenarioConfig
from services.simulator.wechat import WeChatSim

log = logging.getLogger(__name__)

SIM_CLASSES: dict[str, type[PlatformSim]] = {
    "wechat_channels": WeChatSim,
    "douyin": DouyinSim,
    "kuaishou": KuaishouSim,
}


class Simulation:
    def __init__(
        self,
        config: ScenarioConfig,
        *,
        speed: float = 1.0,
        clock: SimClock | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        collector_url: str | None = None,
        fault_rates: dict[str, dict[str, float]] | None = None,
        sim_options: dict[str, dict[str, Any]] | None = None,
        push_concurrency: int = 64,
    ) -> None:
        self.scenario = Scenario(config)
        self.clock = clock or SimClock(config.start_ms, speed)
        self.host = host
        self.ports = dict(ports or {})
        self.collector_url = collector_url
        self.sims: dict[str, PlatformSim] = {}
        self.pushers: dict[str, Pusher] = {}
        for p in config.platforms:
            faults = FaultPlan((fault_rates or {}).get(p), seed=config.seed)
            self.sims[p] = SIM_CLASSES[p](self.scenario, self.clock, faults, **(sim_options or {}).get(p, {}))
        self.push_concurrency = push_concurrency
        if collector_url:
            self.attach(collector_url)
        self._runners: list[web.AppRunner] = []
        self.base_urls: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._push_task: asyncio.Task | None = None

    async def start(self) -> None:
        for p, sim in self.sims.items():
            runner = web.AppRunner(sim.app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.ports.get(p, 0), reuse_address=True)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.ports[p] = port
            self.base_urls[p] = f"http://{self.host}:{port}"
            self._runners.append(runner)
        log.info("simulators listening", extra={"fields": {"urls": self.base_urls}})

    def attach(self, collector_url: str) -> None:
        """Point the pushers at a collector (which may only exist after the simulators started)."""
        self.collector_url = collector_url
        for p, sim in self.sims.items():
            self.pushers[p] = Pusher(self.clock, collector_url, sim.faults, concurrency=self.push_concurrency)

    def platform_config(self) -> dict[str, Any]:
        return platform_config(self.scenario, self.base_urls)

    def start_pushing(self, until_ms: int | None = None) -> asyncio.Task:
        self._push_task = asyncio.create_task(self.push_loop(until_ms))
        return self._push_task

    async def push_loop(self, until_ms: int | None = None) -> None:
        """Deliver every platform's pushes as simulated time reaches them, until ``until_ms``."""
        if not self.pushers:
            return
        until = until_ms if until_ms is not None else self.scenario.end_ms
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            self._session = session
            await self._wait_for_collector(session)
            while True:
                now = self.clock.now_ms()
                for p, pusher in self.pushers.items():
                    self.sims[p].enqueue_due(pusher, min(now, until))
                    await pusher.pump(session)
                done_timeline = all(self.sims[p]._push_cursor >= self.sims[p].push_timeline_len() for p in self.pushers)
                if (now >= until or done_timeline) and all(not p.pending() for p in self.pushers.values()):
                    break
                await asyncio.sleep(0.01)

    async def _wait_for_collector(self, session: aiohttp.ClientSession, timeout_s: float = 60.0) -> None:
        """Pushes sent before the collector listens would only exhaust the platforms' few retries (the
        collector is usually started after the simulators, which it needs the URLs of)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with session.get(f"{self.collector_url}/healthz", timeout=aiohttp.ClientTimeout(total=2)):
                    return  # any answer: something listens
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.2)
        log.warning("collector not reachable; pushing anyway", extra={"fields": {"url": self.collector_url}})

    def push_stats(self) -> dict[str, dict[str, int]]:
        return {p: dict(pu.stats) for p, pu in self.pushers.items()}

    async def stop(self) -> None:
        if self._push_task is not None and not self._push_task.done():
            self._push_task.cancel()
            try:
                await self._push_task
            except asyncio.CancelledError:
                pass
        for r in self._runners:
            await r.cleanup()
        self._runners.clear()
