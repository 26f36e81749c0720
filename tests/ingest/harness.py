"""Runs simulator → collector → real broker for a test, then reads the topics back.

Each run gets its own topic prefix (topics ensured fresh), so tests never see each other's records, and
the simulator and the collector share one SimClock so a contest of many simulated minutes takes seconds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from liveboard.contracts.events import encode_event, event_id_for, parse_event
from liveboard.kafka.catalog import DLQ, EVENTS, RAW, ensure_topics
from liveboard.kafka.clients import make_consumer
from liveboard.settings import Settings
from services.ingest.app import Collector
from services.ingest.config import IngestSettings, load_platforms
from services.ingest.registry import Registry
from services.simulator.clock import SimClock
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, ScenarioConfig


def ingest_settings(**over: Any) -> IngestSettings:
    base: dict[str, Any] = {
        "poll_interval_s": 10,
        "discover_interval_s": 30,
        "video_interval_s": 120,
        "reconcile_interval_s": 60,
        "finished_poll_interval_s": 60,
        "final_after_s": 4 * 60,  # the scenarios below publish final figures 3 min after a stream ends
        "request_timeout_s": 1.0,
        "backoff_base_s": 2.0,
        "backoff_cap_s": 30.0,
        "heartbeat_interval_s": 120,
        "pending_room_ttl_s": 600,
        "_env_file": None,
    }
    base.update(over)
    return IngestSettings(**base)


async def topic_settings(stack: Settings) -> Settings:
    s = stack.model_copy(update={"kafka_topic_prefix": f"t{uuid.uuid4().hex[:10]}."})
    report = await ensure_topics(s)
    assert report.success, report.mismatched
    return s


@dataclass
class Run:
    settings: Settings
    sim: Simulation
    collector: Collector
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def truth(self) -> dict[str, Any]:
        return self.sim.scenario.truth()


@asynccontextmanager
async def running(
    stack: Settings,
    *,
    config: ScenarioConfig,
    speed: float,
    fault_rates: dict[str, dict[str, float]] | None = None,
    sim_options: dict[str, dict[str, Any]] | None = None,
    ingest: dict[str, Any] | None = None,
    lead_ms: int = MINUTE,
    timeout_fault_s: float = 1.5,
) -> AsyncIterator[Run]:
    settings = await topic_settings(stack)
    clock = SimClock(config.start_ms - lead_ms, speed)
    sim = Simulation(config, clock=clock, fault_rates=fault_rates, sim_options=sim_options)
    for s in sim.sims.values():
        s.faults.timeout_s = timeout_fault_s
    await sim.start()
    registry = Registry(clock.now_ms)
    from services.simulator.contest import contest_doc

    doc = contest_doc(sim.scenario)
    window = (doc["stages"][0]["rounds"][0]["window"]["start"], doc["stages"][0]["rounds"][0]["window"]["end"])
    registry.add_contest(
        config.contest_id,
        window,
        [(c.contestant_id, c.platform, c.account_id) for c in sim.scenario.contestants],
    )
    collector = Collector(
        settings,
        ingest_settings(**(ingest or {})),
        load_platforms(sim.platform_config()),
        registry,
        clock=clock,
        port=0,
        follow_account_bound=False,
    )
    await collector.start()
    sim.attach(collector.url)
    run = Run(settings, sim, collector)
    try:
        yield run
    finally:
        await collector.stop()
        await sim.stop()


async def run_to_end(run: Run, extra_sim_ms: int = 30_000) -> None:
    """Deliver every push and keep polling until every room's final figures are out."""
    sc = run.sim.scenario
    end = sc.end_ms + run.collector.ingest.final_after_s * 1000 - sc.config.revision_after_min * MINUTE
    end = max(end, sc.end_ms) + extra_sim_ms
    await run.sim.push_loop(until_ms=end)
    await run.sim.clock.sleep_until(end)
    await run.collector.idle()
    await run.collector.stop()  # nothing more is produced, so reading the topics back terminates


async def consume(settings: Settings, logical_topic: str, idle_s: float = 1.5) -> list[Any]:
    """Every record of a topic (from the beginning), once no new one arrived for ``idle_s``."""
    consumer = make_consumer(settings, settings.topic(logical_topic), group_id=None, fetch_max_wait_ms=200)
    await consumer.start()
    out: list[Any] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=10_000)
            if not batch:
                break
            for records in batch.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def events(settings: Settings) -> list[Any]:
    out = []
    for r in await consume(settings, EVENTS):
        e = parse_event(r.value)
        # the collector encodes with its own fast path: it must be the contract codec's bytes exactly
        assert encode_event(e) == r.value, r.value
        assert dict(r.headers)["type"] == e.type.encode()
        out.append(e)
    return out


async def raws(settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await consume(settings, RAW)]


async def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await consume(settings, DLQ)]


def latest(snapshots: list[Any]) -> Any:
    return max(snapshots, key=lambda e: (e.observed_at, e.revision == "final"))


async def settle() -> None:
    await asyncio.sleep(0)


def account_bound(
    contest_id: str,
    contestant_id: str,
    account_id: str,
    at: int,
    *,
    reason: str,
    approver: str,
    replaces: str | None = None,
    platform: str = "kuaishou",
) -> Any:
    """A manual ``account_bound`` event (a registration import or an operator's re-binding) at ``at``."""
    doc = {
        "event_id": "",
        "type": "account_bound",
        "schema_version": 1,
        "contest_id": contest_id,
        "contestant_id": contestant_id,
        "platform": platform,
        "account_id": account_id,
        "room_id": None,
        "video_id": None,
        "observed_at": at,
        "ingested_at": at,
        "source": "manual",
        "revision": "final",
        "raw_ref": None,
        "data": {"replaces_account_id": replaces, "reason": reason, "approver": approver},
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)
