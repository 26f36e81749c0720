"""The collector follows account_bound events from the real event log, serves /healthz, and beats."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from liveboard.contracts.events import encode_event, event_id_for, parse_event
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_producer
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import events, running

pytestmark = pytest.mark.engines


async def test_account_bound_rebinds_a_contestant_and_health_and_heartbeats(stack) -> None:
    cfg = ScenarioConfig(seed=31, rooms=3, minutes=10, revision_after_min=3, refund_tail_min=3, contest_id="rebind")
    async with running(stack, config=cfg, speed=10) as run:
        c = run.collector
        ks = next(x for x in run.sim.scenario.contestants if x.platform == "kuaishou")
        # the collector in `running` does not follow the log; start the follower the CLI starts
        follower = asyncio.create_task(c._follow_account_bound())
        doc = {
            "event_id": "",
            "type": "account_bound",
            "schema_version": 1,
            "contest_id": "rebind",
            "contestant_id": ks.contestant_id,
            "platform": "kuaishou",
            "account_id": "3xreplacement",
            "room_id": None,
            "video_id": None,
            "observed_at": run.sim.clock.now_ms(),
            "ingested_at": run.sim.clock.now_ms(),
            "source": "manual",
            "revision": "final",
            "raw_ref": None,
            "data": {"replaces_account_id": ks.account_id, "reason": "账号被封，更换", "approver": "operator"},
        }
        doc["event_id"] = event_id_for(doc)
        event = parse_event(doc)
        producer = make_producer(run.settings)
        await producer.start()
        try:
            await producer.send_and_wait(
                run.settings.topic(EVENTS),
                encode_event(event),
                key=f"rebind:{ks.contestant_id}".encode(),
                headers=[("type", b"account_bound"), ("schema_version", b"1")],
            )
        finally:
            await producer.stop()
        for _ in range(100):
            if c.registry.lookup("kuaishou", "3xreplacement"):
                break
            await asyncio.sleep(0.1)
        assert [r.contestant_id for r in c.registry.lookup("kuaishou", "3xreplacement")] == [ks.contestant_id]
        assert c.registry.lookup("kuaishou", ks.account_id) == []
        await asyncio.sleep(1.5)  # the collector's account sync runs every second
        assert ks.account_id not in c.collectors["kuaishou"]._accounts
        async with aiohttp.ClientSession() as s:
            r = await s.get(c.url + "/healthz")
            body = await r.json()
        assert r.status == 200 and body["status"] == "ok"
        assert body["platforms"]["wechat_channels"]["accounts"] == 1
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        run.sim.clock.advance(3 * MINUTE)
        await c.heartbeat()
        await c.idle()
        await c.stop()
        beats = [e for e in await events(run.settings) if e.type == "collector_heartbeat"]
        assert {b.platform for b in beats} == {"wechat_channels", "douyin", "kuaishou"}
        assert all(b.contest_id == "rebind" and b.data.collector_id == "ingest-1" for b in beats)
