"""The collector learns account_bound events from lb.registrations.v1 (not by reading the whole event log),
at start-up and while running; the topic is rebuilt from the log after a lost write; /healthz and beats."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from liveboard.contracts.events import encode_event
from liveboard.kafka.catalog import EVENTS, REGISTRATIONS
from liveboard.kafka.clients import make_producer
from liveboard.kafka.registrations import rebuild
from liveboard.organiser.store import send_events
from services.ingest.app import Collector
from services.ingest.config import load_platforms
from services.ingest.registry import Registry
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import account_bound, consume, events, ingest_settings, running
from tests.scoring.support import poll_until

pytestmark = pytest.mark.engines


async def test_account_bound_rebinds_a_contestant_and_health_and_heartbeats(stack) -> None:
    cfg = ScenarioConfig(seed=31, rooms=3, minutes=10, revision_after_min=3, refund_tail_min=3, contest_id="rebind")
    async with running(stack, config=cfg, speed=10) as run:
        c = run.collector
        ks = next(x for x in run.sim.scenario.contestants if x.platform == "kuaishou")
        # the collector in `running` does not follow the registrations; start the follower the CLI starts
        follower = asyncio.create_task(c._follow_account_bound())
        event = _bound(run.sim.clock.now_ms(), ks.contestant_id, "3xreplacement", ks.account_id)
        # as an import sends it: to the event log, then to the collectors' registrations topic
        await send_events(run.settings, [event])
        assert await poll_until(lambda: c.registry.lookup("kuaishou", "3xreplacement"), 30, 0.05)
        assert [r.contestant_id for r in c.registry.lookup("kuaishou", "3xreplacement")] == [ks.contestant_id]
        assert c.registry.lookup("kuaishou", ks.account_id) == []
        # the collector's account sync (every second) drops the replaced account's polls
        assert await poll_until(lambda: ks.account_id not in c.collectors["kuaishou"]._accounts, 30, 0.05)
        assert "3xreplacement" in c.collectors["kuaishou"]._accounts
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
        # the operators' console reads the last answer and the tokens' expiry from the heartbeat (issue 12)
        now = run.sim.clock.now_ms()
        for b in beats:
            assert b.data.last_ok_at is not None and b.data.last_ok_at <= now, b
            assert b.data.token_expires_at is not None and b.data.token_expires_at > b.data.last_ok_at, b


def _bound(at: int, contestant_id: str, account: str, replaces: str | None, contest: str = "rebind") -> object:
    return account_bound(
        contest, contestant_id, account, at, replaces=replaces, reason="账号被封，更换", approver="operator"
    )


async def test_a_collector_started_later_learns_bindings_and_rebuild_repairs_a_lost_write(stack) -> None:
    cfg = ScenarioConfig(seed=32, rooms=3, minutes=10, revision_after_min=3, refund_tail_min=3, contest_id="rebind")
    async with running(stack, config=cfg, speed=10) as run:
        s = run.settings
        ks = next(x for x in run.sim.scenario.contestants if x.platform == "kuaishou")
        t = run.sim.clock.now_ms()
        first = _bound(t, ks.contestant_id, "3xfirst", ks.account_id)
        second = _bound(t + 1000, ks.contestant_id, "3xsecond", "3xfirst")
        other_contest = _bound(t, ks.contestant_id, "3xelsewhere", None, contest="not-ours")
        await send_events(s, [first, other_contest])
        # a crash after the log acknowledged `second` and before the registrations topic got it
        producer = make_producer(s)
        await producer.start()
        try:
            await producer.send_and_wait(
                s.topic(EVENTS),
                encode_event(second),
                key=f"rebind:{ks.contestant_id}".encode(),
                headers=[("type", b"account_bound"), ("schema_version", b"1")],
            )
        finally:
            await producer.stop()

        async def fresh_collector() -> Collector:
            registry = Registry(run.sim.clock.now_ms)
            registry.add_contest(
                "rebind", (cfg.start_ms, cfg.start_ms + 10 * MINUTE), [(ks.contestant_id, "kuaishou", ks.account_id)]
            )
            col = Collector(
                s,
                ingest_settings(),
                load_platforms(run.sim.platform_config()),
                registry,
                clock=run.sim.clock,
                port=0,
                enabled=["kuaishou"],
                follow_account_bound=True,
            )
            await col.start()  # returns once the registrations present at start are applied
            return col

        late = await fresh_collector()
        try:
            # started after the binding: knows it at once; the lost `second` is not on the small topic
            assert [r.contestant_id for r in late.registry.lookup("kuaishou", "3xfirst")] == [ks.contestant_id]
            assert late.registry.lookup("kuaishou", ks.account_id) == []
            assert late.registry.lookup("kuaishou", "3xsecond") == []
            assert late.registry.lookup("kuaishou", "3xelsewhere") == []  # another contest's binding

            report = await rebuild(s)
            assert (report.in_log, report.present, report.produced) == (3, 2, 1)
            # the running collector learns the repaired binding within seconds
            assert await poll_until(lambda: late.registry.lookup("kuaishou", "3xsecond"), 30, 0.05)
            assert late.registry.lookup("kuaishou", "3xfirst") == []
            again = await rebuild(s)
            assert (again.in_log, again.present, again.produced) == (3, 3, 0)
        finally:
            await late.stop()

        # replayed out of order (the repaired record came last) and with duplicates, a new collector folds
        # the same answer: the latest binding by (observed_at, event_id) is in force
        regs = await consume(s, REGISTRATIONS)
        assert [r.key for r in regs] == [
            f"kuaishou:3xfirst:rebind:{ks.contestant_id}".encode(),
            f"kuaishou:3xelsewhere:not-ours:{ks.contestant_id}".encode(),
            f"kuaishou:3xsecond:rebind:{ks.contestant_id}".encode(),
        ]
        late2 = await fresh_collector()
        try:
            assert [r.account_id for r in late2.registry.lookup("kuaishou", "3xsecond")] == ["3xsecond"]
            assert late2.registry.lookup("kuaishou", "3xfirst") == []
            # the event log was never read by the collectors: it still has exactly what was sent to it
            log = [e for e in await events(s) if e.type == "account_bound"]
            assert sorted(e.account_id for e in log) == ["3xelsewhere", "3xfirst", "3xsecond"]
        finally:
            await late2.stop()
